"""Pod-token xDS identity on the real control plane, measured (a script, not a test).

Run from ``tests/``: ``../.venv/bin/python -m k8s.measure_identity`` (after ``make k8s-tools``).

1. Stream open → first response over TLS with a pod token, ``ROUNDS`` times with a token
   never seen (each one costs a TokenReview and a pod read) and ``ROUNDS`` times with one
   token (answered from the review cache), p50/p99 — against the same replica's plaintext
   port with identity off (a second replica), the cost of TLS plus the checks.
2. Pod deleted → its open stream ended, with ``--resync 1``: ``ROUNDS`` pods, p50/max.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from meshplane.envoy import resources as envoy_resources
from meshplane.testing import FakeAdsClient

from . import cluster as k8s
from . import replicas
from .test_xds_identity_k8s import _client, _mesh_and_nodes, _pod, _token

ROUNDS = 20


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99/max {p99 * 1000:.1f} ms"


async def _first_response(client: FakeAdsClient) -> float:
    started = time.perf_counter()
    async with client as stream:
        await stream.request(envoy_resources.CLUSTER)
        await stream.receive()
    return time.perf_counter() - started


def main() -> None:
    """Print the numbers."""
    with tempfile.TemporaryDirectory() as tmp, k8s.running(k8s.tools_dir(), Path(tmp)) as cluster:
        replicas.install_crds(cluster)
        namespace = "measure"
        cluster.kubectl("create", "namespace", namespace)
        replica = replicas.Replica(
            cluster, Path(tmp) / "r", xds_identity=True, sidecar_layout="auto", resync=1.0
        )
        plain = replicas.Replica(cluster, Path(tmp) / "plain", register_webhooks=False)
        try:
            replicas.wait_for_webhooks(cluster)
            node, _ = _mesh_and_nodes(cluster, namespace)
            _pod(cluster, namespace, "m-0", "vn-a")
            tokens = [_token(cluster, namespace, "m-0") for _ in range(ROUNDS)]
            cold = [asyncio.run(_first_response(_client(replica, node, t))) for t in tokens]
            warm = [asyncio.run(_first_response(_client(replica, node, tokens[0])))]
            warm += [
                asyncio.run(_first_response(_client(replica, node, tokens[0]))) for _ in tokens
            ]
            bare = [
                asyncio.run(_first_response(FakeAdsClient(plain.xds_port, node))) for _ in tokens
            ]
            print(f"open → first CDS, new token each time (TokenReview + pod get): {_ms(cold)}")
            print(f"open → first CDS, same token (review cached):                  {_ms(warm[1:])}")
            print(f"open → first CDS, plaintext, identity off:                      {_ms(bare)}")
            gone: list[float] = []
            for i in range(ROUNDS):
                name = f"m-{i + 1}"
                _pod(cluster, namespace, name, "vn-a")
                token = _token(cluster, namespace, name)

                async def revoked(name: str = name, token: str = token) -> float:
                    async with _client(replica, node, token) as stream:
                        await stream.request(envoy_resources.CLUSTER)
                        await stream.receive()
                        started = time.perf_counter()
                        await asyncio.to_thread(
                            cluster.kubectl, "delete", "pod", name, "-n", namespace, "--wait=false"
                        )
                        await stream.until_ended()
                        return time.perf_counter() - started

                gone.append(asyncio.run(revoked()))
            print(f"pod deleted → stream ended (--resync 1):                        {_ms(gone)}")
        finally:
            plain.stop()
            replica.stop()


if __name__ == "__main__":
    main()
