"""Run every benchmark in turn: ``python -m bench`` (``make bench``)."""

from __future__ import annotations

from bench import api_latency, mesh_scale, xds_fanout


def main() -> None:
    """API latency, the mesh at ten times App Mesh's quotas, then xDS fan-out to real Envoys."""
    api_latency.main()
    print()
    mesh_scale.main()
    print()
    xds_fanout.main([])


if __name__ == "__main__":
    main()
