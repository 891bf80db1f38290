"""Run every benchmark in turn: ``python -m bench`` (``make bench``)."""

from __future__ import annotations

from bench import (
    api_latency,
    interception,
    mesh_scale,
    propagation,
    sds_rotation,
    sidecar_hop,
    sync_scale,
    tls_hop,
    xds_fanout,
)


def main() -> None:
    """API latency, 10x quotas (mesh, sync), fan-out, propagation, hops, interception, SDS."""
    api_latency.main()
    print()
    mesh_scale.main()
    print()
    sync_scale.main()
    print()
    xds_fanout.main([])
    print()
    propagation.main([])
    print()
    sidecar_hop.main([])
    print()
    interception.main([])
    print()
    tls_hop.main([])
    print()
    sds_rotation.main([])


if __name__ == "__main__":
    main()
