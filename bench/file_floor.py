"""The physical floor of a weight flip: the same Envoys fed by files, one atomic rename.

No control plane at all: each Envoy's listener takes its RDS from one route
file shared by the whole fleet (``path_config_source``, a JSON
``DiscoveryResponse``). The resources are the very ones
:func:`bench.xds_fanout.snapshot` builds (same listener, same route
configuration, same clusters); only the config sources differ (a path instead
of ADS). The listener and the clusters (their one endpoint inline, ``STATIC``)
sit in the bootstrap's ``static_resources`` rather than in LDS/CDS files: every
watched file costs an Envoy one inotify instance, the kernel allows 128 per
user (``fs.inotify.max_user_instances``), and three per Envoy stopped the 43rd
Envoy of a fleet of 50 (Envoy asserts ``inotify_fd_ >= 0``). With one each the
bench runs up to ~120 Envoys unless that limit is raised; the weight flip only
touches RDS either way. A flip writes the
new route file beside the old one and ``rename``\\ s it over it; Envoy's
inotify watch on the file's directory sees the move and every Envoy reloads.

"Applied" is read from each Envoy's own admin stats: the RDS subscription's
``version_text`` must show the new version, and its ``update_time`` gauge (ms
since the epoch, stamped by Envoy when the update was accepted) gives when, so
the bench's polling of the admin endpoints is not counted. The flip's time is
from just before the rename to the last Envoy's ``update_time`` (1 ms
resolution on both ends). :func:`bench.peer_fanout` prints it beside
meshplane's and the peer's all-ACKed figures.

Run: ``python -m bench.file_floor [--clients 10] [--pushes 5]``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import config_source_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import any_pb2, json_format, message

from bench import xds_fanout
from meshplane import envoy

ROUTE_NAME = "rds_egress_http_80"
RDS_STAT = f"http.ingress.rds.{ROUTE_NAME}"
FLIPS = [{"blue": 0, "green": 100}, {"blue": 50, "green": 50}]
CLUSTERS = {"blue": 9, "green": 10}  # the endpoint ports xds_fanout.snapshot gives them
APPLY_DEADLINE = 60.0
SETTLE = 0.1  # s before the first poll of a flip; see wait_applied


def _path_source(path: Path) -> config_source_pb2.ConfigSource:
    source = config_source_pb2.ConfigSource(resource_api_version=config_source_pb2.V3)
    source.path_config_source.path = str(path)
    return source


def _discovery_response(version: str, resources: list[message.Message]) -> str:
    """A ``DiscoveryResponse`` as JSON, the format Envoy's file subscriptions read."""
    packed = []
    for resource in resources:
        wrapped = any_pb2.Any()
        wrapped.Pack(resource)
        packed.append(json_format.MessageToDict(wrapped))
    return json.dumps({"version_info": version, "resources": packed})


def _listener(port: int, routes: Path) -> listener_pb2.Listener:
    """xds_fanout's listener with its RDS read from ``routes`` instead of ADS."""
    built = xds_fanout._listener(port)
    chain_filter = built.filter_chains[0].filters[0]
    manager = hcm_pb2.HttpConnectionManager()
    chain_filter.typed_config.Unpack(manager)
    manager.rds.config_source.CopyFrom(_path_source(routes))
    chain_filter.typed_config.Pack(manager)
    return built


def _cluster(name: str, port: int) -> cluster_pb2.Cluster:
    """xds_fanout's cluster with its one endpoint inline (``STATIC``): no EDS server here."""
    built = cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.STATIC)
    built.connect_timeout.FromMilliseconds(1000)
    built.load_assignment.CopyFrom(xds_fanout._endpoints(name, port))
    return built


def stage_routes(path: Path, version: str, weights: Mapping[str, int]) -> Path:
    """Write route configuration ``version`` beside ``path``; renaming it over publishes it."""
    staged = path.with_name(f".{path.name}.staged")
    staged.write_text(_discovery_response(version, [xds_fanout._routes(weights)]))
    return staged


def write_routes(path: Path, version: str, weights: Mapping[str, int]) -> int:
    """Publish ``version`` to every Envoy by one rename; returns when it was renamed (ms)."""
    staged = stage_routes(path, version, weights)
    renamed_ms = time.time_ns() // 1_000_000  # whole ms, as Envoy's update_time
    os.replace(staged, path)
    return renamed_ms


class FileEnvoy:
    """One Envoy configured from files; reads its admin endpoint back from a file."""

    def __init__(self, process: subprocess.Popen[bytes], admin_file: Path) -> None:
        self.process = process
        self._admin_file = admin_file
        self._admin = ""

    def admin(self) -> str:
        """The admin base URL, once Envoy wrote it (kept only after a request succeeded)."""
        if self._admin:
            return self._admin
        text = self._admin_file.read_text().strip() if self._admin_file.exists() else ""
        return f"http://{text}" if text else ""

    def get(self, path: str) -> str:
        """GET one admin path; raises while Envoy is not up yet."""
        base = self.admin()
        if not base:
            raise ConnectionError("admin not up yet")
        with urllib.request.urlopen(f"{base}{path}", timeout=10) as response:
            text: str = response.read().decode()
        self._admin = base  # the file may have been read half-written before
        return text

    def rds_state(self) -> tuple[str, int]:
        """The route subscription's ``(version_text, update_time ms)`` from admin stats."""
        text = self.get(f"/stats?filter=^{RDS_STAT}\\.(version_text|update_time)$")
        version, update_ms = "", 0
        for line in text.splitlines():
            name, _, value = line.partition(": ")
            if name.endswith(".version_text"):
                version = value.strip().strip('"')
            elif name.endswith(".update_time"):
                update_ms = int(value)
        return version, update_ms

    def route_config(self) -> dict[str, Any]:
        """The applied route configuration, from ``/config_dump``."""
        dump = json.loads(self.get("/config_dump?resource=dynamic_route_configs"))
        config: dict[str, Any] = dump["configs"][0]
        return config


@contextlib.contextmanager
def file_fleet(count: int, workdir: Path, weights: Mapping[str, int]) -> Iterator[list[FileEnvoy]]:
    """Write the files, start ``count`` file-fed Envoys, wait until all applied; always kill."""
    routes = workdir / "routes" / "rds.json"
    routes.parent.mkdir()
    write_routes(routes, "0", weights)
    clusters = [
        json_format.MessageToDict(_cluster(n, p)) for n, p in CLUSTERS.items() if n in weights
    ]
    envoys: list[FileEnvoy] = []
    try:
        for index, port in enumerate(xds_fanout._free_ports(count)):
            node_id = f"mesh/bench/virtualNode/vn-{index:03d}"
            config = {
                "node": {"id": node_id, "cluster": node_id},
                "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
                "static_resources": {
                    "listeners": [json_format.MessageToDict(_listener(port, routes))],
                    "clusters": clusters,
                },
            }
            admin_file = workdir / f"admin-{index:03d}"
            argv = envoy.command(config, log_level="error", admin_address_path=admin_file)
            with (workdir / f"envoy-{index:03d}.log").open("wb") as log:
                process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
            envoys.append(FileEnvoy(process, admin_file))
        wait_applied(envoys, "0", deadline=xds_fanout.SYNC_DEADLINE)
        yield envoys
    finally:
        for each in envoys:
            with contextlib.suppress(ProcessLookupError):
                each.process.kill()
        for each in envoys:
            each.process.wait(timeout=30)


def wait_applied(
    envoys: list[FileEnvoy], version: str, settle: float = 0.0, deadline: float = APPLY_DEADLINE
) -> list[int]:
    """Poll until every Envoy's RDS shows ``version``; each one's ``update_time`` (ms).

    ``settle`` holds the first poll back so the admin requests do not compete
    with the Envoys for the two cores while they apply (the bench's timing is
    Envoy's own stamp, so waiting longer costs nothing but wall time).
    """
    give_up = time.monotonic() + deadline
    time.sleep(settle)
    applied: dict[int, int] = {}
    while len(applied) < len(envoys):
        for index, each in enumerate(envoys):
            if index in applied:
                continue
            with contextlib.suppress(OSError, http.client.HTTPException):
                seen, update_ms = each.rds_state()
                if seen == version:
                    applied[index] = update_ms
        if time.monotonic() > give_up:
            missing = [e.process.pid for i, e in enumerate(envoys) if i not in applied]
            raise TimeoutError(f"Envoys (pids {missing}) never applied route version {version}")
        time.sleep(0.002)  # a bench poll, not synchronisation: Envoy stamps the time itself
    return [applied[i] for i in range(len(envoys))]


@dataclasses.dataclass
class Floor:
    """One fleet size's file-based weight flips (seconds)."""

    envoys: int
    all_applied: list[float] = dataclasses.field(default_factory=list)
    per_envoy_median: list[float] = dataclasses.field(default_factory=list)


def inotify_room() -> int:
    """How many file-fed Envoys the kernel's inotify instance limit leaves room for."""
    limit = int(Path("/proc/sys/fs/inotify/max_user_instances").read_text())
    in_use = sum(1 for fd in Path("/proc").glob("[0-9]*/fd/*") if _link(fd) == "anon_inode:inotify")
    return limit - in_use


def _link(path: Path) -> str:
    with contextlib.suppress(OSError):
        return os.readlink(path)
    return ""


def run_floor(count: int, pushes: int) -> Floor:
    """Measure ``pushes`` weight flips by rename across ``count`` file-fed Envoys.

    Returns an empty row (printed as ``-``) when the inotify limit has no room
    for ``count`` Envoys, rather than starting a fleet whose tail cannot watch.
    """
    row = Floor(envoys=count)
    if count > inotify_room():
        print(
            f"file floor skipped at {count} Envoys: raise fs.inotify.max_user_instances",
            file=sys.stderr,
        )
        return row
    with tempfile.TemporaryDirectory(prefix="file-floor-") as tmp:
        workdir = Path(tmp)
        with file_fleet(count, workdir, FLIPS[1]) as fleet:
            for push in range(pushes):
                version = str(push + 1)
                renamed_ms = write_routes(workdir / "routes" / "rds.json", version, FLIPS[push % 2])
                times = [(t - renamed_ms) / 1000 for t in wait_applied(fleet, version, SETTLE)]
                row.all_applied.append(max(times))
                row.per_envoy_median.append(statistics.median(times))
    return row


def report(rows: list[Floor], pushes: int) -> None:
    """Print the floor alone (``peer_fanout`` prints it beside the servers)."""
    print(f"file-based weight flip (rename of the route file), {pushes} flips")
    print(f"{'envoys':>6} {'all applied p50':>15} {'p99':>7} {'per-Envoy p50':>13}")
    for row in rows:
        if not row.all_applied:
            print(f"{row.envoys:>6} {'-':>15}")
            continue
        print(
            f"{row.envoys:>6} {xds_fanout._ms(statistics.median(row.all_applied)):>15}"
            f" {xds_fanout._ms(xds_fanout._p99(row.all_applied))}"
            f" {xds_fanout._ms(statistics.median(row.per_envoy_median)):>13}"
        )


def main(argv: list[str] | None = None) -> None:
    """Parse flags, measure each fleet size, print the floor."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[20])
    parser.add_argument("--pushes", type=int, default=20)
    args = parser.parse_args(argv)
    report([run_floor(count, args.pushes) for count in args.clients], args.pushes)


if __name__ == "__main__":
    main()
