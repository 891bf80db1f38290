"""Access keys and their policies, kept in the data dir; the administrator's profile file.

At first start a data dir gets two files, both mode 0600 in a 0700 directory:

- ``credentials``: an AWS shared-credentials file with profile ``meshplane`` (the
  administrator), so ``AWS_SHARED_CREDENTIALS_FILE=D/credentials AWS_PROFILE=meshplane``
  makes boto3, the ``aws`` CLI and ``meshplane`` itself sign as the administrator;
- ``principals.json``: every principal (name, access key id, secret, policy).

Why a file and not a store table: SigV4 needs the secret itself (the signing key is
derived per day and region), so these are secrets; they stay beside ``credentials`` under
the same 0600 mode and never travel with a store backup, a ``changes`` feed row or a
shared database. Creating a key is also not an App Mesh change: it must not bump the
store revision the sync stage and ``waitForRevision`` follow. Writes are atomic (a
temporary file, fsync, rename), so a crash leaves the old or the new set, never half.

Replicas that must agree on their principals (``meshplane k8s``) give :class:`Principals`
a :class:`Backend`: every change is then applied to the backend's current set (which
retries it on a concurrent write) before this replica's file, and :meth:`Principals.reload`
takes a set another replica stored.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from meshplane.auth import policies

ADMIN = "meshplane"
"""The administrator's principal and profile name."""
CREDENTIALS_FILE = "credentials"
PRINCIPALS_FILE = "principals.json"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""Principal names: usable as a shared-credentials profile name as they are."""


class PrincipalError(ValueError):
    """A principal that cannot be created or deleted; the message says why."""


@dataclasses.dataclass(frozen=True)
class Principal:
    """One identity: its access key pair and the policy that says what it may do."""

    name: str
    access_key_id: str
    secret_access_key: str
    policy: policies.Policy
    created_at: float

    def profile(self) -> str:
        """The principal's section of an AWS shared-credentials file."""
        return (
            f"[{self.name}]\n"
            f"aws_access_key_id = {self.access_key_id}\n"
            f"aws_secret_access_key = {self.secret_access_key}\n"
        )

    def summary(self) -> dict[str, Any]:
        """What ``credentials list`` shows: everything but the secret."""
        return {
            "name": self.name,
            "accessKeyId": self.access_key_id,
            "createdAt": self.created_at,
            "policy": dict(self.policy.document),
        }

    def to_json(self) -> dict[str, Any]:
        """The stored form (with the secret)."""
        return {**self.summary(), "secretAccessKey": self.secret_access_key}

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> Principal:
        """Read one stored principal back."""
        return cls(
            str(item["name"]),
            str(item["accessKeyId"]),
            str(item["secretAccessKey"]),
            policies.parse(item["policy"]),
            float(item["createdAt"]),
        )


Change = Callable[[dict[str, "Principal"]], None]
"""An edit of the principals by name (it may raise :class:`PrincipalError` or ``KeyError``)."""


class Backend(Protocol):
    """Where the principals of several replicas live (Kubernetes: a Secret)."""

    def update(self, change: Change) -> dict[str, Principal]:
        """Apply ``change`` to the stored set and store it; the new set.

        May call ``change`` again on a fresh copy when another writer got there first;
        what ``change`` raises propagates and nothing is stored.
        """
        ...


def dump(principals: Iterable[Principal]) -> str:
    """The text of ``principals.json`` for ``principals``."""
    items = [p.to_json() for p in principals]
    return json.dumps({"principals": items}, indent=2) + "\n"


def load(text: str) -> dict[str, Principal]:
    """The principals of a ``principals.json`` text, by name."""
    items = json.loads(text)["principals"]
    return {p.name: p for p in map(Principal.from_json, items)}


def new_key_pair() -> tuple[str, str]:
    """A fresh access key id shaped like AWS's (``AKIA`` + 16 base32) and a 40-char secret."""
    key_id = "AKIA" + base64.b32encode(secrets.token_bytes(10)).decode()
    return key_id, secrets.token_urlsafe(30)


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, readable by the owner only."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode is masked by the umask and ignored if it existed
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)


class Principals:
    """The principals of one data dir; looked up on every request, changed by the admin."""

    def __init__(self, data_dir: Path, clock: Any) -> None:
        """Open (or at first start create) the principals and the admin's credentials file."""
        self.data_dir = data_dir
        self.credentials_path = data_dir / CREDENTIALS_FILE
        self.path = data_dir / PRINCIPALS_FILE
        self._clock = clock
        self._lock = threading.Lock()
        self.created = False
        """Whether this start created the administrator (the banner says so)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        data_dir.chmod(0o700)
        self.backend: Backend | None = None
        """Set by a caller sharing the principals (changes go there first)."""
        self._by_name: dict[str, Principal] = {}
        if self.path.exists():
            self._by_name = load(self.path.read_text(encoding="utf-8"))
        if ADMIN not in self._by_name:
            key_id, secret = new_key_pair()
            admin = Principal(ADMIN, key_id, secret, policies.parse(policies.ADMINISTRATOR), 0.0)
            self._by_name[ADMIN] = dataclasses.replace(admin, created_at=clock())
            self._save()
            self.created = True
        if self.created or not self.credentials_path.exists():
            _write_private(self.credentials_path, self.admin.profile())
        self._by_key = {p.access_key_id: p for p in self._by_name.values()}

    @property
    def admin(self) -> Principal:
        """The ``meshplane`` administrator (allowed everything)."""
        return self._by_name[ADMIN]

    def _save(self) -> None:
        _write_private(self.path, dump(self._by_name.values()))

    def _install(self, updated: dict[str, Principal]) -> None:
        """Make ``updated`` this replica's set: the file first, then the lookups."""
        if ADMIN not in updated:
            raise PrincipalError(f"a principals set without the administrator {ADMIN!r}")
        _write_private(self.path, dump(updated.values()))
        admin_changed = updated[ADMIN] != self._by_name.get(ADMIN)
        self._by_name = updated
        self._by_key = {p.access_key_id: p for p in updated.values()}
        if admin_changed:  # D/credentials signs as the administrator of the set in force
            _write_private(self.credentials_path, self.admin.profile())

    def _commit(self, change: Change) -> None:
        """Apply ``change`` (to the backend's set when there is one); call under the lock."""
        if self.backend is None:
            updated = dict(self._by_name)
            change(updated)
        else:
            updated = self.backend.update(change)
        self._install(updated)

    def reload(self, updated: Mapping[str, Principal]) -> bool:
        """Take the set another replica stored; whether anything changed."""
        with self._lock:
            if dict(updated) == self._by_name:
                return False
            self._install(dict(updated))
            return True

    def by_access_key(self, access_key_id: str) -> Principal | None:
        """The principal holding ``access_key_id``, if any."""
        return self._by_key.get(access_key_id)

    def list(self) -> list[Principal]:
        """Every principal, the administrator first, then by name."""
        return sorted(self._by_name.values(), key=lambda p: (p.name != ADMIN, p.name))

    def create(self, name: str, document: Any) -> Principal:
        """A new principal with a fresh key pair; its key works from the next request on."""
        if not NAME.fullmatch(name):
            raise PrincipalError(
                f"invalid principal name {name!r}: 1-64 of A-Z a-z 0-9 _ . -, starting "
                "with a letter or digit"
            )
        try:
            policy = policies.parse(document)
        except policies.PolicyError as error:
            raise PrincipalError(f"invalid policy: {error}") from error
        key_id, secret = new_key_pair()
        created = Principal(name, key_id, secret, policy, self._clock())

        def add(by_name: dict[str, Principal]) -> None:
            if name in by_name:
                raise PrincipalError(f"principal {name!r} already exists")
            by_name[name] = created

        with self._lock:
            self._commit(add)
        return created

    def delete(self, name: str) -> Principal:
        """Remove a principal; its key is refused from the next request on."""
        if name == ADMIN:
            raise PrincipalError(
                f"the administrator {ADMIN!r} cannot be deleted (it would lock everyone out)"
            )
        removed: list[Principal] = []

        def remove(by_name: dict[str, Principal]) -> None:
            found = by_name.pop(name, None)
            if found is None:
                raise KeyError(name)
            removed.append(found)

        with self._lock:
            self._commit(remove)
        return removed[-1]
