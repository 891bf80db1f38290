"""Run every benchmark in turn: ``python -m bench`` (``make bench``)."""

from __future__ import annotations

from bench import api_latency, mesh_scale, propagation, sidecar_hop


def main() -> None:
    """API latency, the mesh at ten times App Mesh's quotas, propagation, the sidecar hop."""
    api_latency.main()
    print()
    mesh_scale.main()
    print()
    propagation.main([])
    print()
    sidecar_hop.main([])


if __name__ == "__main__":
    main()
