"""Splicing virtual hosts into a serialized route configuration gives a whole build's bytes."""

from __future__ import annotations

from envoy.config.route.v3 import route_components_pb2 as route_pb
from envoy.config.route.v3 import route_pb2

from meshplane.translate import patching


def _config(routes: dict[str, list[str]]) -> route_pb2.RouteConfiguration:
    config = route_pb2.RouteConfiguration(name="rds_egress_http_15001")
    for host, clusters in routes.items():
        virtual_host = config.virtual_hosts.add(name=host, domains=[host, f"{host}:80"])
        for cluster in clusters:
            route = virtual_host.routes.add(name=f"to-{cluster}")
            route.match.prefix = "/"
            route.route.cluster = cluster
        connect = virtual_host.routes.add(name="connect")
        connect.match.connect_matcher.SetInParent()
        connect.route.cluster = "tunnel"
    config.validate_clusters.value = False
    return config


def _routes(clusters: list[str]) -> list[route_pb.Route]:
    host = _config({"x": clusters}).virtual_hosts[0]
    return list(host.routes)[:-1]


def _bytes(config: route_pb2.RouteConfiguration) -> bytes:
    serialized: bytes = config.SerializeToString(deterministic=True)
    return serialized


def test_a_spliced_host_serializes_as_the_whole_configuration_would() -> None:
    """Rewriting vs-b's routes twice (the second time from the spans) matches full builds."""
    body = _bytes(_config({"vs-a": ["a"], "vs-b": ["b1"], "vs-c": ["c"]}))
    spans = patching.virtual_host_spans(body)
    assert [s.name for s in spans] == ["vs-a", "vs-b", "vs-c"]

    def rewrite(clusters: list[str]) -> tuple[bytes, tuple[patching.HostSpan, ...]]:
        return patching.splice_virtual_hosts(
            body,
            {"vs-b"},
            lambda _name, host: patching.rebuilt_host(host, _routes(clusters), tunnelled=True),
            spans,
        )

    body, spans = rewrite(["b1", "b2", "b3"])
    assert body == _bytes(_config({"vs-a": ["a"], "vs-b": ["b1", "b2", "b3"], "vs-c": ["c"]}))
    body, spans = rewrite(["b4"])
    assert body == _bytes(_config({"vs-a": ["a"], "vs-b": ["b4"], "vs-c": ["c"]}))
    assert spans == patching.virtual_host_spans(body)


def test_no_wanted_host_leaves_the_bytes_alone() -> None:
    """A configuration without the wanted host comes back as the same object."""
    body = _bytes(_config({"vs-a": ["a"]}))
    same, spans = patching.splice_virtual_hosts(body, {"vs-z"}, lambda _n, h: h)
    assert same is body
    assert [s.name for s in spans] == ["vs-a"]


def test_a_route_swapped_in_place_serializes_as_the_whole_host_would() -> None:
    """Replacing the second of three routes gives the host's full bytes; a stale edit is refused."""
    old, new = _routes(["a", "b", "c"]), _routes(["a", "z", "c"])
    host = _config({"x": ["a", "b", "c"]}).virtual_hosts[0].SerializeToString(deterministic=True)
    edit = patching.RouteEdit(
        1,
        old[1].SerializeToString(deterministic=True),
        new[1].SerializeToString(deterministic=True),
    )
    expected = (
        _config({"x": ["a", "z", "c"]}).virtual_hosts[0].SerializeToString(deterministic=True)
    )
    assert patching.splice_routes(host, [edit]) == expected
    assert patching.splice_routes(expected, [edit]) is None
    assert patching.splice_routes(host, [patching.RouteEdit(9, edit.before, edit.after)]) is None


def test_callers_hosts_are_spliced_from_a_shared_start_only_when_they_share_it() -> None:
    """Hosts differing after the edit share the start; one differing before is spliced alone."""
    old, new = _routes(["a", "b", "c"]), _routes(["a", "z", "c"])
    edit = patching.RouteEdit(
        1,
        old[1].SerializeToString(deterministic=True),
        new[1].SerializeToString(deterministic=True),
    )

    def host(clusters: list[str], tunnel: str, domain: str = "x") -> bytes:
        config = _config({"x": clusters})
        virtual_host = config.virtual_hosts[0]
        virtual_host.domains[0] = domain
        virtual_host.routes[-1].route.cluster = tunnel
        serialized: bytes = virtual_host.SerializeToString(deterministic=True)
        return serialized

    starts = patching.SharedStarts([edit])
    for tunnel, domain in (("t-1", "x"), ("t-2", "x"), ("t-3", "other"), ("t-4", "x")):
        expected = host(["a", "z", "c"], tunnel, domain)
        assert starts.spliced(host(["a", "b", "c"], tunnel, domain)) == expected
    assert starts.spliced(host(["a", "z", "c"], "t-5")) is None
