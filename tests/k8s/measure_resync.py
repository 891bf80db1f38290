"""One identity resync pass at N sidecars, sequential vs. bounded-concurrent (a script, not a test).

Run from ``tests/``: ``../.venv/bin/python -m k8s.measure_resync [N] [PASSES]`` (after
``make k8s-tools``). Defaults: 1,000 sidecars, 3 passes per setting.

The sidecars are real as far as a resync can tell: N Pods stored by the real kube-apiserver
(an ``envoy`` container naming a node), each with a TokenRequest token bound to it, each
admitted by :class:`~meshplane.k8s.identities.PodIdentities` (a real TokenReview and pod
read). Only the gRPC streams are absent: a resync never touches them unless it revokes.
A pass is then timed with ``concurrency=1`` (one check after the other, what a resync did
before) and with the default bound, the two settings interleaved in one run.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from envoy.config.core.v3 import base_pb2

from meshplane.k8s import apiserver, identities

from . import cluster as k8s

NAMESPACE = "resync"
NODE = "mesh/m/virtualNode/vn-a"


def _pod(i: int) -> dict[str, Any]:
    env = [{"name": identities.NODE_ENV, "value": NODE}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"s-{i}", "namespace": NAMESPACE},
        "spec": {
            "serviceAccountName": "default",
            "containers": [{"name": "envoy", "image": "registry.invalid/envoy:1", "env": env}],
        },
    }


async def _token(session: Any, name: str, uid: str) -> str:
    """A TokenRequest bound to pod ``name`` (what the kubelet asks for the projected volume)."""
    body = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "audiences": [identities.AUDIENCE],
            "expirationSeconds": 3600,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid},
        },
    }
    path = f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default/token"
    reply = await session.post(path, json=body)
    reply.raise_for_status()
    return str(reply.json()["status"]["token"])


async def _measure(kubeconfig: Path, uids: dict[str, str], passes: int) -> None:
    client = apiserver.connect(kubeconfig)
    session = client._client._client  # lightkube's authenticated session (no TokenRequest call)
    limit = asyncio.Semaphore(16)

    async def mint(name: str, uid: str) -> str:
        async with limit:
            return await _token(session, name, uid)

    tokens = await asyncio.gather(*(mint(name, uid) for name, uid in uids.items()))
    reviewer = identities.Reviewer(client)
    guard = identities.PodIdentities(client, reviewer, None)
    node = base_pb2.Node(id=NODE, cluster=NODE)
    revoked: list[str] = []

    async def admit(token: str) -> None:
        async with limit:
            metadata = {"authorization": f"Bearer {token}"}
            await guard.admit_stream(NODE, node, metadata, lambda r: revoked.append(str(r)))

    await asyncio.gather(*(admit(t) for t in tokens))
    assert guard.streams == len(uids), guard.streams
    timings: dict[int, list[float]] = {1: [], identities.CONCURRENCY: []}
    calls: dict[int, int] = {}
    cpus: dict[int, list[float]] = {}
    for _ in range(passes):
        for concurrency, values in timings.items():
            guard.concurrency = concurrency
            before = reviewer.reviews
            started, cpu = time.perf_counter(), time.process_time()
            gone = await guard.revalidate()
            values.append(time.perf_counter() - started)
            cpus.setdefault(concurrency, []).append(time.process_time() - cpu)
            assert gone == 0, revoked[:3]
            calls[concurrency] = 2 * (reviewer.reviews - before)  # a review and a pod read each
    for concurrency, values in timings.items():
        label = "sequential (concurrency 1)" if concurrency == 1 else f"concurrency {concurrency}"
        median, cpu = statistics.median(values), statistics.median(cpus[concurrency])
        print(
            f"resync pass, {len(uids)} sidecars, {label:27}: median {median:.2f} s, "
            f"max {max(values):.2f} s over {len(values)} passes "
            f"({calls[concurrency]} API calls each; meshplane's CPU {cpu:.2f} s)"
        )
    await client.close()


def main() -> None:
    """Print both settings' pass times."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    passes = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with tempfile.TemporaryDirectory() as tmp, k8s.running(k8s.tools_dir(), Path(tmp)) as cluster:
        cluster.kubectl("create", "namespace", NAMESPACE)
        k8s.poll(
            lambda: (
                cluster.kubectl("get", "sa", "default", "-n", NAMESPACE, check=False).returncode
                == 0
            ),
            60.0,
            "the default service account",
        )
        for start in range(0, count, 200):
            cluster.apply(*(_pod(i) for i in range(start, min(count, start + 200))))
        listed = cluster.kubectl_json("get", "pods", "-n", NAMESPACE)["items"]
        uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in listed}
        asyncio.run(_measure(cluster.kubeconfig, uids, passes))


if __name__ == "__main__":
    main()
