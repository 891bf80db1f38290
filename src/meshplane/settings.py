"""Every tunable of meshplane, declared once: name, environment variable, default, help.

Layer 1. The composition root (:mod:`meshplane.app`) builds one :class:`Settings`
from defaults, the environment and CLI flags, and passes pieces of it down;
nothing else reads the environment.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

AUTH_MODES = ("sigv4", "none")
"""``--auth``: SigV4 with policies (the default), or nothing at all (loopback only)."""
DEFAULT_CLIENT_TOKEN_TTL = 86400
"""24 h: how long a clientToken is remembered unless configured otherwise."""
DEFAULT_CLIENT_TOKENS_PER_PRINCIPAL = 10_000
"""clientToken records one principal keeps at most unless configured otherwise."""
DEFAULT_CERT_TTL = 86400
"""24 h: the lifetime of a workload certificate from the built-in CA."""


def _setting(default: Any, env: str, help: str) -> Any:
    return dataclasses.field(default=default, metadata={"env": env, "help": help})


@dataclasses.dataclass(frozen=True)
class Quotas:
    """App Mesh's default service quotas (``appmesh-api.md`` §10); all adjustable here."""

    meshes: int = _setting(15, "MESHPLANE_QUOTA_MESHES", "Meshes per account")
    virtual_nodes_per_mesh: int = _setting(
        200, "MESHPLANE_QUOTA_VIRTUAL_NODES", "Virtual nodes per mesh"
    )
    virtual_routers_per_mesh: int = _setting(
        200, "MESHPLANE_QUOTA_VIRTUAL_ROUTERS", "Virtual routers per mesh"
    )
    virtual_services_per_mesh: int = _setting(
        200, "MESHPLANE_QUOTA_VIRTUAL_SERVICES", "Virtual services per mesh"
    )
    virtual_gateways_per_mesh: int = _setting(
        3, "MESHPLANE_QUOTA_VIRTUAL_GATEWAYS", "Virtual gateways per mesh"
    )
    routes_per_virtual_router: int = _setting(
        50, "MESHPLANE_QUOTA_ROUTES", "Routes per virtual router"
    )
    gateway_routes_per_virtual_gateway: int = _setting(
        10, "MESHPLANE_QUOTA_GATEWAY_ROUTES", "Gateway routes per virtual gateway"
    )
    backends_per_virtual_node: int = _setting(
        50, "MESHPLANE_QUOTA_BACKENDS", "Backends per virtual node"
    )

    def scaled(self, factor: int) -> Quotas:
        """Every quota multiplied by ``factor`` (benchmarks run at ten times App Mesh's)."""
        return Quotas(**{f.name: getattr(self, f.name) * factor for f in dataclasses.fields(self)})


@dataclasses.dataclass(frozen=True)
class Settings:
    """The control plane's configuration."""

    data_dir: Path = _setting(
        Path(".meshplane"),
        "MESHPLANE_DATA_DIR",
        "Where the store, credentials, keys and the process lock live",
    )
    store: str = _setting(
        "",
        "MESHPLANE_STORE",
        "The store: empty for the SQLite file in the data dir, or a postgresql://... URL "
        "that several control-plane replicas share (high availability)",
    )
    host: str = _setting("127.0.0.1", "MESHPLANE_HOST", "Address the API and xDS servers bind")
    api_port: int = _setting(9080, "MESHPLANE_API_PORT", "Port of the App Mesh REST API")
    xds_port: int = _setting(9090, "MESHPLANE_XDS_PORT", "Port of the ADS (xDS) gRPC server")
    xds_tls_port: int = _setting(
        0,
        "MESHPLANE_XDS_TLS_PORT",
        "Also serve ADS over TLS here (built-in CA), for sidecars that sign their streams "
        "with SigV4 (aws-appmesh-envoy, APPMESH_XDS_ENDPOINT); 0: off",
    )
    xds_tls_names: tuple[str, ...] = _setting(
        ("localhost",),
        "MESHPLANE_XDS_TLS_NAMES",
        "Comma-separated host names sidecars dial for ADS over TLS: the certificate's names, "
        "and the hosts a SigV4-signed stream may have signed",
    )
    sync_debounce_ms: int = _setting(
        1,
        "MESHPLANE_SYNC_DEBOUNCE_MS",
        "Milliseconds the sync stage gathers store changes before rebuilding proxies' config",
    )
    xds_ack_timeout_s: int = _setting(
        10,
        "MESHPLANE_XDS_ACK_TIMEOUT",
        "Seconds a make-before-break step waits for Envoy's ACK before going ahead",
    )
    region: str = _setting("us-west-2", "MESHPLANE_REGION", "Region written into ARNs")
    account_id: str = _setting(
        "123456789012", "MESHPLANE_ACCOUNT_ID", "12-digit account id: ARNs and owners"
    )
    client_token_ttl: int = _setting(
        DEFAULT_CLIENT_TOKEN_TTL,
        "MESHPLANE_CLIENT_TOKEN_TTL",
        "Seconds a clientToken is remembered: a retry inside the window replays the first "
        "result; after it the token is forgotten (App Mesh's tokens are short-lived too)",
    )
    cert_ttl: int = _setting(
        DEFAULT_CERT_TTL,
        "MESHPLANE_CERT_TTL",
        "Seconds a workload certificate from the built-in CA is valid; each is replaced over "
        "SDS once two thirds of that have passed",
    )
    ca_cert: str = _setting(
        "",
        "MESHPLANE_CA_CERT",
        "PEM file of an intermediate CA (then its issuers up to the root) to sign workload "
        "certificates with, instead of the built-in root in <data-dir>/ca",
    )
    ca_key: str = _setting("", "MESHPLANE_CA_KEY", "PEM file of that intermediate's EC key")
    trust_domain: str = _setting(
        "meshplane.local",
        "MESHPLANE_TRUST_DOMAIN",
        "SPIFFE trust domain of automatic mTLS's identities: spiffe://<domain>/mesh/<mesh>/"
        "virtualNode/<name>, and the name of the built-in CA's bundle",
    )
    auth: str = _setting(
        "sigv4",
        "MESHPLANE_AUTH",
        "sigv4: every API request must be SigV4-signed by a known principal; none: no "
        "authentication (throwaway use, loopback only)",
    )
    allow_origins: tuple[str, ...] = _setting(
        (),
        "MESHPLANE_ALLOW_ORIGINS",
        "Comma-separated browser origins whose requests are accepted (none by default)",
    )
    allow_hosts: tuple[str, ...] = _setting(
        (),
        "MESHPLANE_ALLOW_HOSTS",
        "Comma-separated Host names accepted besides the addresses the server is bound to",
    )
    xds_auth: bool = _setting(
        True,
        "MESHPLANE_XDS_AUTH",
        "Require every ADS stream and endpoint registration to carry the proxy credential the "
        "control plane issued for its (node, replica); off only for throwaway dev use",
    )
    proxy_credential_ttl: int = _setting(
        7 * 86400,
        "MESHPLANE_PROXY_CREDENTIAL_TTL",
        "Seconds a proxy credential stays valid (a sidecar shows it again on every reconnect)",
    )
    endpoint_lease_ttl: int = _setting(
        15,
        "MESHPLANE_ENDPOINT_LEASE_TTL",
        "Seconds a registered endpoint lives unless its runtime renews it (every third of this)",
    )
    feed_keep_revisions: int = _setting(
        10_000,
        "MESHPLANE_FEED_KEEP_REVISIONS",
        "Change-feed entries kept when the store is compacted: a reader less than this "
        "many revisions behind follows change by change, one further behind rereads whole",
    )
    max_client_tokens: int = _setting(
        100_000,
        "MESHPLANE_MAX_CLIENT_TOKENS",
        "clientToken records kept at most (the newest); older ones are forgotten early",
    )
    client_tokens_per_principal: int = _setting(
        DEFAULT_CLIENT_TOKENS_PER_PRINCIPAL,
        "MESHPLANE_CLIENT_TOKENS_PER_PRINCIPAL",
        "clientToken records one principal keeps at most: its oldest is forgotten first, "
        "so one busy caller cannot push everybody else's out of the window",
    )
    store_maintenance_s: int = _setting(
        300,
        "MESHPLANE_STORE_MAINTENANCE",
        "Seconds between store maintenance passes: feed compaction, token pruning, "
        "incremental vacuum, WAL checkpoint (0: never)",
    )
    http_header_timeout: float = _setting(
        10.0,
        "MESHPLANE_HTTP_HEADER_TIMEOUT",
        "Seconds an API client has to send a whole request head once it started (slowloris)",
    )
    http_idle_timeout: float = _setting(
        60.0, "MESHPLANE_HTTP_IDLE_TIMEOUT", "Seconds an idle API connection stays open"
    )
    http_body_timeout: float = _setting(
        30.0, "MESHPLANE_HTTP_BODY_TIMEOUT", "Seconds an API client has to send a request body"
    )
    http_max_connections: int = _setting(
        0,
        "MESHPLANE_HTTP_MAX_CONNECTIONS",
        "Open API connections at most (0: half the fd limit, at most 1000)",
    )
    xds_max_streams: int = _setting(
        0,
        "MESHPLANE_XDS_MAX_STREAMS",
        "Open ADS streams at most (0: a quarter of the fd limit, at most 2000)",
    )
    quotas: Quotas = dataclasses.field(default_factory=Quotas)


def _coerce(value: str, like: Any) -> Any:
    if isinstance(like, bool):
        return value.lower() in {"1", "true", "yes", "on"}
    if isinstance(like, int):
        return int(value)
    if isinstance(like, float):
        return float(value)
    if isinstance(like, Path):
        return Path(value)
    if isinstance(like, tuple):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def _from_env(cls: type[Any], environ: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        env = field.metadata.get("env")
        if env and env in environ:
            found[field.name] = _coerce(environ[env], field.default)
    return found


def load(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Defaults, then ``MESHPLANE_*`` environment variables, then explicit overrides."""
    env = os.environ if environ is None else environ
    quotas = Quotas(**_from_env(Quotas, env))
    values: dict[str, Any] = {"quotas": quotas, **_from_env(Settings, env)}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)
