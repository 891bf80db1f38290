"""What ``describe`` of a node's effective TLS costs, and what the SAN check adds to translation.

A mesh of N virtual nodes in a chain (node i calls node i+1) under automatic mTLS, every
caller's client policy naming SANs (the worst case for describe: each caller may say
something about the described node, so each one's translation is read). Reports the
median time of ``tlsstate.state`` for one node, and of one sidecar's translation.

Run: ``python -m bench.describe_tls [--nodes 50 200]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from meshplane import app, settings
from meshplane.model import kinds
from meshplane.store import snapshots
from meshplane.translate import NodeIdentity, build, tlsstate

ROUNDS = 20


def _spec(index: int, nodes: int) -> dict[str, object]:
    spec: dict[str, object] = {
        "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
        "serviceDiscovery": {"dns": {"hostname": f"vn-{index}.local"}},
    }
    if index + 1 < nodes:
        target = f"spiffe://meshplane.local/mesh/bench/virtualNode/vn-{index + 1}"
        policy = {
            "tls": {
                "validation": {
                    "trust": {"sds": {"secretName": "spiffe://meshplane.local"}},
                    "subjectAlternativeNames": {"match": {"exact": [target]}},
                }
            }
        }
        spec["backends"] = [
            {"virtualService": {"virtualServiceName": f"vs-{index + 1}", "clientPolicy": policy}}
        ]
    return spec


def measure(nodes: int) -> tuple[float, float]:
    """Median seconds of describe's TLS state and of one translation, in a mesh of ``nodes``."""
    with tempfile.TemporaryDirectory() as directory:
        config = settings.load(environ={}, data_dir=Path(directory), auth="none")
        plane = app.build(config)
        svc = plane.services.resources
        tag = [{"key": "meshplane.dev/mtls", "value": "STRICT"}]
        svc.create(kinds.MESH, "bench", "bench", {}, tags=tag)
        for index in range(nodes):
            svc.create(kinds.VIRTUAL_NODE, "bench", f"vn-{index}", _spec(index, nodes))
            provider = {"provider": {"virtualNode": {"virtualNodeName": f"vn-{index}"}}}
            svc.create(kinds.VIRTUAL_SERVICE, "bench", f"vs-{index}", provider)
        snapshot = snapshots.mesh_snapshot(plane.store, "bench")
        assert snapshot is not None
        middle = f"vn-{nodes // 2}"
        describing, translating = [], []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            found = tlsstate.state(snapshot, kinds.VIRTUAL_NODE.key, middle)
            describing.append(time.perf_counter() - started)
            assert found is not None
            assert found["conditions"] == []
            started = time.perf_counter()
            build(snapshot, NodeIdentity("bench", kinds.VIRTUAL_NODE.key, middle))
            translating.append(time.perf_counter() - started)
        plane.store.close()
        return statistics.median(describing), statistics.median(translating)


def main(argv: list[str] | None = None) -> None:
    """Print one line per mesh size."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, nargs="+", default=[50, 200])
    arguments = parser.parse_args(argv)
    print("describe TLS state (tlsstate.state) vs one translation, median of", ROUNDS)
    for nodes in arguments.nodes:
        describing, translating = measure(nodes)
        print(
            f"  {nodes:4d} nodes: describe {describing * 1000:7.2f} ms, "
            f"translate {translating * 1000:6.2f} ms"
        )


if __name__ == "__main__":
    main()
