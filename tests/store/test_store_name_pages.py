"""The store pages a kind's names and finds specs naming a service, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from meshplane.model.kinds import ResourceKey
from meshplane.model.snapshot import Resource
from meshplane.store.protocols import Store


def _put(store: Store, kind: str, name: str, parent: str = "", spec: Any = None) -> None:
    resource = Resource(
        key=ResourceKey(kind, "m", parent, name),
        arn=f"arn:{kind}/{parent}/{name}",
        uid=f"uid-{kind}-{parent}-{name}",
        version=1,
        created_at=1.0,
        updated_at=1.0,
        spec=spec or {},
        owner="123456789012",
    )
    with store.transaction() as tx:
        tx.insert(resource, [])


def test_name_pages_are_in_python_order_filtered_and_bounded(any_store: Store) -> None:
    """Routes of two routers come back by (router, name) whatever the creation order; the
    filter ignores ASCII case and matches the parent too; ``_`` and ``%`` are literal."""
    for parent, name in [
        ("vr-b", "rt-1"),
        ("vr-a", "rt-2"),
        ("vr-a", "RT_10"),
        ("vr-a", "rt-1"),
        ("vr-b", "rt%x"),
        ("vr-B", "rt-0"),
    ]:
        _put(any_store, "route", name, parent)
    _put(any_store, "virtualNode", "rt-1")  # another kind: never counted
    with any_store.read() as tx:
        assert tx.name_page("route", "m") == (
            6,
            6,
            [
                ("vr-B", "rt-0"),
                ("vr-a", "RT_10"),
                ("vr-a", "rt-1"),
                ("vr-a", "rt-2"),
                ("vr-b", "rt%x"),
                ("vr-b", "rt-1"),
            ],
        )
        assert tx.name_page("route", "m", offset=2, limit=3) == (
            6,
            6,
            [("vr-a", "rt-1"), ("vr-a", "rt-2"), ("vr-b", "rt%x")],
        )
        assert tx.name_page("route", "m", "rt_1") == (6, 1, [("vr-a", "RT_10")])
        assert tx.name_page("route", "m", "%") == (6, 1, [("vr-b", "rt%x")])
        assert tx.name_page("route", "m", "VR-B") == (
            6,
            3,
            [("vr-B", "rt-0"), ("vr-b", "rt%x"), ("vr-b", "rt-1")],
        )
        assert tx.name_page("route", "m", "nothing") == (6, 0, [])
        assert tx.name_page("route", "m", "rt", offset=6, limit=50) == (6, 6, [])
        assert tx.name_page("route", "other") == (0, 0, [])


def test_mentioning_finds_every_spec_that_holds_the_string(any_store: Store) -> None:
    """Nodes whose backends name a service are among the answer, a node that does not is
    not, and LIKE's wildcards in the name match only themselves."""

    def backends(*services: str) -> dict[str, Any]:
        return {"backends": [{"virtualService": {"virtualServiceName": s}} for s in services]}

    _put(any_store, "virtualNode", "caller-1", spec=backends("svc_a.local", "other"))
    _put(any_store, "virtualNode", "caller-2", spec=backends("svc_a.local"))
    _put(any_store, "virtualNode", "near-miss", spec=backends("svcXa.local"))
    _put(any_store, "virtualNode", "longer", spec=backends("svc_a.local.more"))
    _put(any_store, "virtualService", "svc_a.local", spec=backends("svc_a.local"))
    with any_store.read() as tx:
        found = [r.key.name for r in tx.mentioning("virtualNode", "m", "svc_a.local")]
    assert found == ["caller-1", "caller-2"]
