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
"""

from __future__ import annotations

from collections.abc import Mapping

from envoy.config.core.v3 import base_pb2

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
        current = self._board.node(key)
        if current is not None and current.connected and current.node != node:
            raise roles.PermissionDenied(
                f"{key} is connected already with another node announcement; "
                "a second stream cannot change its identity or metadata"
            )
