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
