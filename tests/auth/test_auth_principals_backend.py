"""Principals with a shared backend: changes go there first, and a stored set is reloaded."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from meshplane.auth import principals as auth_principals
from meshplane.auth.principals import Principal, PrincipalError, Principals

POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "appmesh:List*", "Resource": "*"}],
}


class RacingBackend:
    """Holds the shared set; the first write of each change loses to another replica's."""

    def __init__(self, stored: dict[str, Principal], rival: Principal) -> None:
        self.stored = dict(stored)
        self.rival = rival
        self.rounds = 0

    def update(self, change: auth_principals.Change) -> dict[str, Principal]:
        while True:
            self.rounds += 1
            current = dict(self.stored)
            change(current)
            if self.rival.name not in self.stored:  # another replica wrote meanwhile: retry
                self.stored[self.rival.name] = self.rival
                continue
            self.stored = current
            return dict(current)


def _rival(tmp_path: Path) -> Principal:
    other = Principals(tmp_path / "other", lambda: 5.0)
    return other.create("rival", POLICY)


def test_a_change_is_applied_to_the_backends_set_again_after_a_concurrent_write(
    tmp_path: Path,
) -> None:
    """Create with a backend: retried on the fresh set, so the rival's principal survives."""
    plane = Principals(tmp_path / "d", lambda: 1.0)
    backend = RacingBackend({p.name: p for p in plane.list()}, _rival(tmp_path))
    plane.backend = backend
    created = plane.create("reader", POLICY)
    assert backend.rounds == 2
    assert sorted(backend.stored) == ["meshplane", "reader", "rival"]
    assert [p.name for p in plane.list()] == ["meshplane", "reader", "rival"]
    assert plane.by_access_key(created.access_key_id) == created
    assert auth_principals.load((tmp_path / "d" / "principals.json").read_text()) == backend.stored


def test_a_refused_change_stores_nothing(tmp_path: Path) -> None:
    """A duplicate name raises from the change; neither the backend nor the file moves."""
    plane = Principals(tmp_path / "d", lambda: 1.0)
    plane.create("reader", POLICY)
    before = (tmp_path / "d" / "principals.json").read_text()
    backend = RacingBackend({p.name: p for p in plane.list()}, plane.list()[1])
    plane.backend = backend
    with pytest.raises(PrincipalError, match="principal 'reader' already exists"):
        plane.create("reader", POLICY)
    assert (tmp_path / "d" / "principals.json").read_text() == before


def test_reload_takes_another_admin_and_rewrites_the_credentials_file(tmp_path: Path) -> None:
    """A stored set with another administrator: lookups, principals.json and credentials follow."""
    plane = Principals(tmp_path / "d", lambda: 1.0)
    other = Principals(tmp_path / "o", lambda: 2.0)
    old_key = plane.admin.access_key_id
    assert plane.reload({p.name: p for p in other.list()}) is True
    assert plane.admin == other.admin
    assert plane.by_access_key(old_key) is None
    assert (tmp_path / "d" / "credentials").read_text() == other.admin.profile()
    assert plane.reload({p.name: p for p in other.list()}) is False


def test_reload_refuses_a_set_without_the_administrator(tmp_path: Path) -> None:
    """A set lacking ``meshplane`` would lock everyone out: refused, nothing changes."""
    plane = Principals(tmp_path / "d", lambda: 1.0)
    reader = plane.create("reader", POLICY)
    with pytest.raises(PrincipalError, match="without the administrator 'meshplane'"):
        plane.reload({"reader": dataclasses.replace(reader)})
    assert [p.name for p in plane.list()] == ["meshplane", "reader"]
