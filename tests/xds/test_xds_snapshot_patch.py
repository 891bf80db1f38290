"""A snapshot patched in place equals the snapshot built whole from the same resources."""

from __future__ import annotations

import pytest
from xds_configs import cluster, endpoints, listener, route_config

from meshplane.envoy import CLUSTER, ENDPOINT
from meshplane.xds import ResourceEncoder, Snapshot


def test_replacing_resources_gives_the_version_a_whole_build_gives() -> None:
    """Swapping one load assignment: same version and resources as building it all again."""
    encoder = ResourceEncoder()
    base = [listener(15000), route_config({"blue": 1}), cluster("blue"), cluster("green")]
    before = Snapshot.of([*base, endpoints("blue", 1), endpoints("green", 2)], encoder)
    moved = encoder.encode(endpoints("green", 3))
    patched = before.replaced([moved])
    whole = Snapshot.of([*base, endpoints("blue", 1), endpoints("green", 3)], encoder)
    assert patched.version == whole.version
    assert patched.version != before.version
    assert patched.type_version(ENDPOINT) == whole.type_version(ENDPOINT)
    assert patched.type_version(CLUSTER) == before.type_version(CLUSTER)
    assert patched.resources(ENDPOINT)["green"] is moved
    assert before.resources(ENDPOINT)["green"] is not moved


def test_replacing_a_resource_the_snapshot_lacks_is_refused() -> None:
    """A patch may only swap resources the snapshot holds: adding one is an error."""
    encoder = ResourceEncoder()
    snapshot = Snapshot.of([cluster("blue")], encoder)
    with pytest.raises(ValueError, match=r"no .*Cluster resource 'green' to replace"):
        snapshot.replaced([encoder.encode(cluster("green"))])


def test_patches_of_patches_across_version_runs_match_whole_builds() -> None:
    """150 assignments (three runs of lines): chained and carried patches version as built whole."""
    encoder = ResourceEncoder()
    names = [f"c-{index:03d}" for index in range(150)]
    ports = dict.fromkeys(names, 1)

    def whole() -> Snapshot:
        return Snapshot.of([endpoints(name, port) for name, port in ports.items()], encoder)

    snapshot = whole()
    for moved in (("c-000", "c-149"), ("c-070",), ("c-000", "c-064", "c-063")):
        for name in moved:
            ports[name] += 1
        snapshot = snapshot.replaced([encoder.encode(endpoints(n, ports[n])) for n in moved])
        assert snapshot.type_version(ENDPOINT) == whole().type_version(ENDPOINT)
        assert snapshot.version == whole().version
        # A rebuild like the patched snapshot keeps its type version and its kept lines.
        snapshot = Snapshot(
            [encoder.encode(endpoints(name, port)) for name, port in ports.items()], like=snapshot
        )
    assert snapshot.version == whole().version
    assert snapshot.version != Snapshot.of([endpoints(n, 1) for n in names], encoder).version
