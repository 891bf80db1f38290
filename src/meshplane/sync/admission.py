"""Which ADS streams meshplane serves: a proxy credential for exactly the node it announces.

The xDS server is generic (it knows a :class:`~meshplane.xds.roles.StreamAuthenticator`,
not tokens); this is meshplane's implementation. A stream must carry the token the
control plane issued (:mod:`meshplane.service.proxycredentials`) in the gRPC metadata
entry ``x-meshplane-token``, which the bootstrap puts on Envoy's ADS service
(``initial_metadata``):

- no token, or one that is forged or expired → UNAUTHENTICATED;
- a genuine token for another node id or replica → PERMISSION_DENIED;
- while a proxy of that key is connected, a second stream must announce the very same
  node (id, cluster, metadata) → PERMISSION_DENIED otherwise. A second announcer can
  neither rewire a running sidecar's ports nor change what proxy-status reports of it.

Refused streams never reach the status board, so proxy-status stays truthful.

:class:`SigV4Admission` admits the other form, the aws-appmesh-envoy image's: a stream
SigV4-signed by a principal of the data dir (:mod:`meshplane.auth.streams`) whose policy
allows ``appmesh:StreamAggregatedResources`` on the node; every other stream goes to the
authenticator it wraps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from envoy.config.core.v3 import base_pb2

from meshplane.auth import errors as auth_errors
from meshplane.auth import streams
from meshplane.auth.principals import Principals
from meshplane.envoy.bootstrapping import CREDENTIAL_METADATA
from meshplane.service.proxycredentials import InvalidCredential, ProxyCredentials
from meshplane.xds import cache as xds_cache
from meshplane.xds import roles
from meshplane.xds import status as xds_status

TOKEN_METADATA = CREDENTIAL_METADATA
"""The gRPC metadata key (lower case, as gRPC sends it) that carries a proxy credential."""


class TokenAdmission:
    """A :class:`~meshplane.xds.roles.StreamAuthenticator` over meshplane's proxy credentials."""

    def __init__(self, credentials: ProxyCredentials, board: xds_status.StatusBoard) -> None:
        """Verify tokens with ``credentials``; ``board`` says which proxies are connected."""
        self._credentials = credentials
        self._board = board

    def admit(self, key: str, node: base_pb2.Node, metadata: Mapping[str, str]) -> None:
        """Admit ``node`` only with a token for its id and replica, and no rival announcer."""
        token = metadata.get(TOKEN_METADATA)
        if token is None:
            if self._credentials.required:
                raise roles.Unauthenticated(
                    f"{node.id}: no proxy credential ({TOKEN_METADATA} metadata); "
                    "ask the control plane for one (POST /meshplane/v1/proxyCredentials)"
                )
        else:
            try:
                claims = self._credentials.verify(token)
            except InvalidCredential as exc:
                raise roles.Unauthenticated(f"{node.id}: {exc}") from exc
            if xds_cache.node_key(claims.node_id, claims.replica or None) != key:
                raise roles.PermissionDenied(
                    f"the credential is for {xds_cache.node_key(claims.node_id, claims.replica)}"
                    f", not for {key}"
                )
        _no_rival(self._board, key, node)


def _no_rival(board: xds_status.StatusBoard, key: str, node: base_pb2.Node) -> None:
    """While ``key`` is connected, a second stream must announce the very same node."""
    current = board.node(key)
    if current is not None and current.connected and current.node != node:
        raise roles.PermissionDenied(
            f"{key} is connected already with another node announcement; "
            "a second stream cannot change its identity or metadata"
        )


class SigV4Admission:
    """Admits SigV4-signed streams by principal and policy; the rest go to ``inner``."""

    def __init__(
        self,
        principals: Principals | None,
        board: xds_status.StatusBoard,
        inner: roles.StreamAuthenticator,
        *,
        region: str,
        account: str,
        clock: Callable[[], float],
        hosts: Sequence[str] = (),
    ) -> None:
        """Check signatures against ``principals`` (None: refuse every signed stream).

        ``hosts`` are the ``host:port`` names a signer may have dialled (set once the TLS
        port is known); none, and signed streams are refused.
        """
        self._principals = principals
        self._board = board
        self.inner = inner
        self._region = region
        self._account = account
        self._clock = clock
        self.hosts: tuple[str, ...] = tuple(hosts)

    def admit(self, key: str, node: base_pb2.Node, metadata: Mapping[str, str]) -> None:
        """A signed stream by its signer's policy; any other by ``inner``."""
        if not streams.is_signed(metadata):
            self.inner.admit(key, node, metadata)
            return
        if self._principals is None:
            raise roles.Unauthenticated(f"{node.id}: this control plane runs without principals")
        try:
            streams.verify_stream(
                metadata,
                node.id,
                hosts=self.hosts,
                region=self._region,
                account=self._account,
                now=self._clock(),
                principal_for=self._principals.by_access_key,
            )
        except auth_errors.AccessDeniedException as exc:
            raise roles.PermissionDenied(str(exc)) from exc
        except auth_errors.AuthError as exc:
            raise roles.Unauthenticated(f"{node.id}: {exc}") from exc
        _no_rival(self._board, key, node)
