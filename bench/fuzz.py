"""The model-driven fuzzer at length: ``python -m bench.fuzz [REQUESTS] [SEED]``.

Runs :class:`meshplane.testing.fuzzing.Fuzzer` against an in-process control
plane and prints requests fuzzed, the status counts, the 5xx count and every
broken invariant (the test suite runs a bounded 3,000).
"""

from __future__ import annotations

import collections
import sys
import tempfile
import time
from pathlib import Path

from meshplane.testing import ControlPlane
from meshplane.testing.fuzzing import Fuzzer

DEFAULT_REQUESTS = 20000


def main(argv: list[str]) -> None:
    """Fuzz ``argv[0]`` requests (default 20,000) with seed ``argv[1]`` (default 1)."""
    requests = int(argv[0]) if argv else DEFAULT_REQUESTS
    seed = int(argv[1]) if len(argv) > 1 else 1
    with (
        tempfile.TemporaryDirectory(prefix="meshplane-fuzz-") as tmp,
        ControlPlane(Path(tmp) / "data") as plane,
    ):
        began = time.perf_counter()
        report = Fuzzer(plane.client().transport, seed).run(requests)
        elapsed = time.perf_counter() - began
    print(f"fuzz (seed {seed}): {report.summary()} in {elapsed:.1f} s")
    counted = collections.Counter((f.invariant, f.operation) for f in report.findings)
    for (invariant, operation), count in counted.most_common(20):
        print(f"  {count:6d}  {invariant}: {operation}")
    for finding in report.findings[:10]:
        print(f"  e.g. {finding.status} {finding.request[:160]} -> {finding.detail[:160]}")


if __name__ == "__main__":
    main(sys.argv[1:])
