"""The price of mTLS on the sidecar hop, and how fast the built-in CA issues certificates.

On the running walkthrough (:mod:`bench.echo_mesh`), the full mesh path — client →
frontend's sidecar → backend's sidecar → backend app — measured plaintext and with
automatic mutual TLS between the two sidecars, beside the direct call to the app. The
mesh tag ``meshplane.dev/mtls`` is switched between ``PERMISSIVE`` and absent before
every round (each switch waits until every proxy runs it), so the plaintext and mTLS
rounds interleave and share the machine's noise. Keep-alive connections, as apps use
them: the handshake is paid once per connection, the per-request cost is encryption.

A second part issues leaf certificates from a fresh CA back to back (ECDSA P-256 key
generation plus signing, what each rotation costs the control plane).

Run: ``python -m bench.tls_hop [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from bench import serving, sidecar_hop
from bench.echo_mesh import BACKEND_BLUE, FRONTEND, EchoMesh, running
from meshplane.kit.clock import system_clock
from meshplane.model import kinds
from meshplane.pki import authority

MTLS = "meshplane.dev/mtls"
ISSUED = 200


def _switch(mesh: EchoMesh, on: bool) -> None:
    """Tag (or untag) the mesh and wait until every proxy runs the result."""
    plane = mesh.plane

    async def write() -> tuple[int, int]:
        assert plane.plane is not None
        services = plane.plane.services
        arn = services.resources.describe(kinds.MESH, "demos", "demos")["metadata"]["arn"]
        before = plane.plane.store.revision()
        if on:
            services.tagging.tag(arn, [{"key": MTLS, "value": "PERMISSIVE"}])
        else:
            services.tagging.untag(arn, [MTLS])
        return before, plane.plane.store.revision()

    before, after = plane.call(write())
    if after == before:
        return  # already so: nothing to push
    deadline = time.monotonic() + 60
    while not mesh.all_synced(before):
        if time.monotonic() > deadline:
            raise RuntimeError("proxies did not sync the mTLS switch within 60 s")
        time.sleep(0.01)  # polling a condition


def _issue_rate() -> tuple[float, float]:
    """Certificates per second, and the median milliseconds per certificate."""
    with tempfile.TemporaryDirectory(prefix="meshplane-bench-ca-") as tmp:
        ca = authority.load_or_create(Path(tmp) / "ca", system_clock)
        each = []
        began = time.perf_counter()
        for index in range(ISSUED):
            start = time.perf_counter()
            ca.issue(f"spiffe://meshplane.local/mesh/bench/virtualNode/vn-{index}", 86400)
            each.append(time.perf_counter() - start)
        wall = time.perf_counter() - began
    return ISSUED / wall, serving.median(each) * 1000


def main(argv: list[str] | None = None) -> None:
    """Measure direct, two Envoys plaintext and two Envoys with mTLS; print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.tls_hop")
    parser.add_argument("--rounds", type=int, default=5, help="1 s rounds per cell")
    parser.add_argument(
        "--client",
        choices=("wrk", "python"),
        default="wrk" if shutil.which("wrk") else "python",
    )
    args = parser.parse_args(argv)
    runs: dict[tuple[str, int], list[sidecar_hop.Cell]] = {}
    with running() as mesh, tempfile.TemporaryDirectory(prefix="meshplane-bench-") as tmp:
        script = Path(tmp) / "done.lua"
        script.write_text(sidecar_hop._WRK_DONE)
        backend = mesh.proxy(BACKEND_BLUE)
        frontend = mesh.proxy(FRONTEND, "echo-frontend")
        assert backend.app is not None
        direct = sidecar_hop.Target("direct", backend.app, "echo-backend-blue")
        mesh_path = sidecar_hop.Target("two Envoys", frontend.egress, "vs-echo-backend:80")

        def run(path: sidecar_hop.Target, connections: int) -> sidecar_hop.Cell:
            seconds = sidecar_hop.ROUND_SECONDS
            if args.client == "wrk":
                return sidecar_hop._wrk(path, connections, seconds, script)
            return sidecar_hop._python(path, connections, seconds)

        for connections in sidecar_hop.CONNECTIONS:
            for on in (False, True):  # warm-up, both ways
                _switch(mesh, on)
                sidecar_hop._check(mesh_path)
                run(mesh_path, connections)
            for _ in range(args.rounds):
                runs.setdefault(("direct", connections), []).append(run(direct, connections))
                for on, name in ((False, "plaintext"), (True, "mTLS")):
                    _switch(mesh, on)
                    sidecar_hop._check(mesh_path)
                    runs.setdefault((name, connections), []).append(run(mesh_path, connections))
    results = {key: sidecar_hop._combine(cells) for key, cells in runs.items()}
    rate, per_cert = _issue_rate()
    _print(results, args.client, args.rounds, rate, per_cert)


def _print(
    results: dict[tuple[str, int], sidecar_hop.Cell],
    client: str,
    rounds: int,
    rate: float,
    per_cert: float,
) -> None:
    tool = "wrk -t1" if client == "wrk" else "Python http.client threads"
    print(
        f"mTLS on the sidecar hop: client → frontend Envoy → backend Envoy → app, {tool}, "
        f"median p50/p99 of {rounds} interleaved 1 s rounds"
    )
    head = f"{'path':<12}{'conns':>6}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'fail':>6}"
    head += f"{'vs plain p50':>14}{'vs plain p99':>14}"
    print(head)
    print("-" * len(head))
    for connections in sidecar_hop.CONNECTIONS:
        plain = results[("plaintext", connections)]
        for name in ("direct", "plaintext", "mTLS"):
            cell = results[(name, connections)]
            extra = ""
            if name == "mTLS":
                extra = f"{cell.p50_ms - plain.p50_ms:>+14.3f}{cell.p99_ms - plain.p99_ms:>+14.3f}"
            print(
                f"{name:<12}{connections:>6}{cell.p50_ms:>9.3f}{cell.p99_ms:>9.3f}"
                f"{cell.rate:>9.0f}{cell.failures:>6}{extra}"
            )
    print(f"built-in CA: {rate:.0f} certificates/s ({per_cert:.2f} ms median, {ISSUED} issued)")


if __name__ == "__main__":
    main()
