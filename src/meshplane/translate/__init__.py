"""Translation: a mesh snapshot and one sidecar's identity in, Envoy resources out.

Layer 2. A pure function (:func:`build`) with App Mesh's semantics and App
Mesh's resource names (``reference/appmesh-controller.md`` §3): no I/O, no
clock, no globals; broken input is skipped and recorded, never raised.
One module per Envoy type (:mod:`.listeners`, :mod:`.routes`, :mod:`.clusters`,
:mod:`.endpoints`, :mod:`.names`; :mod:`.tls` for transport sockets and the SDS
secrets they name, which the sync stage has issued); :mod:`.plan` resolves App Mesh references
first; :mod:`.dependencies` records what a translation looked up, so the sync
stage rebuilds only the sidecars a change can affect (:mod:`.reuse` shares
pieces across sidecars, :mod:`.patching` says when a change can be spliced into
their previous snapshots instead); :mod:`.diagnostics`
holds the warnings (resource, code, message). Specs arrive typed (the classes
generated from botocore's model), so translation reads attributes. May import
:mod:`meshplane.model`, :mod:`meshplane.kit`, the xds-protos generated
``envoy``/``google.protobuf`` modules — not grpc, not :mod:`meshplane.envoy`.
"""

from meshplane.translate.building import EnvoyResources, build
from meshplane.translate.identity import NodeIdentity

__all__ = ["EnvoyResources", "NodeIdentity", "build"]
