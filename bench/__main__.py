"""Run every benchmark in turn: ``python -m bench`` (``make bench``)."""

from __future__ import annotations

from bench import api_latency, mesh_scale


def main() -> None:
    """API latency first, then the mesh at ten times App Mesh's quotas."""
    api_latency.main()
    print()
    mesh_scale.main()


if __name__ == "__main__":
    main()
