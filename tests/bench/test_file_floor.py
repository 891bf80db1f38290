"""The file-based floor harness of bench.peer_fanout really applies a weight flip."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import file_floor

pytestmark = pytest.mark.integration


def _weights(route_config: dict[str, object]) -> tuple[str, dict[str, int]]:
    """The dumped route configuration's version and its cluster → weight map."""
    config = route_config["route_config"]
    assert isinstance(config, dict)
    action = config["virtual_hosts"][0]["routes"][0]["route"]
    clusters = action["weighted_clusters"]["clusters"]
    return str(route_config["version_info"]), {c["name"]: c["weight"] for c in clusters}


def test_one_rename_flips_the_weights_of_every_file_fed_envoy(tmp_path: Path) -> None:
    """Two file-fed Envoys: after one rename of the route file both dump the new weights."""
    with file_floor.file_fleet(2, tmp_path, {"blue": 50, "green": 50}) as fleet:
        assert [_weights(e.route_config()) for e in fleet] == [("0", {"blue": 50, "green": 50})] * 2
        file_floor.write_routes(tmp_path / "routes" / "rds.json", "1", {"blue": 0, "green": 100})
        applied = file_floor.wait_applied(fleet, "1")
        assert [_weights(e.route_config()) for e in fleet] == [("1", {"blue": 0, "green": 100})] * 2
        assert len(applied) == 2
