"""Large hostile specs cost linear time and text: found by the 3 MB request bench."""

from __future__ import annotations

from meshplane.model import rules


def test_repeated_listener_ports_name_each_listener_once() -> None:
    """Each repeated port names its own listener; paths do not grow with every repeat."""
    listeners = [{"portMapping": {"port": 8000 + i % 2, "protocol": "http"}} for i in range(5)]
    assert rules.problems("virtualRouter", {"listeners": listeners}) == [
        "spec.listeners[2].portMapping.port: port 8000 is used by another listener",
        "spec.listeners[3].portMapping.port: port 8001 is used by another listener",
        "spec.listeners[4].portMapping.port: port 8000 is used by another listener",
    ]
