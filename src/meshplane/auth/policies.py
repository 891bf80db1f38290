"""IAM-style policy documents: parsing them strictly, and deciding one request.

A document is ``{"Version": "2012-10-17", "Statement": [...]}`` (a single statement
object is accepted too, as IAM does). Each statement has ``Effect`` (``Allow`` or
``Deny``), ``Action`` and ``Resource`` (a string or a list of strings). Patterns use
IAM's two wildcards: ``*`` (any run of characters, ``/`` included) and ``?`` (one
character). Actions compare case-insensitively, as IAM's do; resource ARNs exactly.

Evaluation is IAM's for a single identity policy: an explicit Deny wins over any
Allow, and what no statement allows is denied. A document that does not parse is
refused when the credentials are created, never half-applied at request time.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

VERSIONS = ("2012-10-17", "2008-10-17")
"""The policy language versions IAM accepts; both mean the same here (no variables)."""

STATEMENT_KEYS = frozenset({"Sid", "Effect", "Action", "Resource"})

ADMINISTRATOR: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
"""The policy of the ``meshplane`` administrator profile created at first start."""


class PolicyError(ValueError):
    """A policy document that is not one this evaluator can apply; the message says why."""


class Decision(enum.Enum):
    """What a policy says about one request."""

    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "no statement allows it"


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """Whether ``value`` matches an IAM pattern with ``*`` and ``?`` (the whole value)."""
    return _compiled(pattern, ignore_case).fullmatch(value) is not None


@dataclasses.dataclass(frozen=True)
class Statement:
    """One statement: its effect and the action and resource patterns it covers."""

    allow: bool
    actions: tuple[str, ...]
    resources: tuple[str, ...]

    def covers(self, action: str, resource: str) -> bool:
        """Whether this statement applies to ``action`` on ``resource``."""
        return any(wildcard_match(p, action, ignore_case=True) for p in self.actions) and any(
            wildcard_match(p, resource) for p in self.resources
        )


@dataclasses.dataclass(frozen=True)
class Policy:
    """A parsed policy document (keep :attr:`document` to show it back to users)."""

    document: Mapping[str, Any]
    statements: tuple[Statement, ...]

    def decide(self, action: str, resource: str) -> Decision:
        """IAM's evaluation for one identity policy: explicit Deny > Allow > default deny."""
        allowed = False
        for statement in self.statements:
            if statement.covers(action, resource):
                if not statement.allow:
                    return Decision.EXPLICIT_DENY
                allowed = True
        return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def _strings(statement: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = statement.get(key)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not value or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where}: {key} must be a string or a non-empty list of strings")
    if not all(value):
        raise PolicyError(f"{where}: {key} has an empty pattern")
    return tuple(value)


def parse(document: Any) -> Policy:
    """Check ``document`` (parsed JSON) and build the policy; PolicyError names the fault."""
    if not isinstance(document, Mapping):
        raise PolicyError("a policy must be a JSON object with Version and Statement")
    unknown = sorted(set(document) - {"Version", "Id", "Statement"})
    if unknown:
        raise PolicyError(f"unknown policy keys: {', '.join(unknown)}")
    if document.get("Version") not in VERSIONS:
        raise PolicyError(f"Version must be one of {', '.join(VERSIONS)}")
    raw = document.get("Statement")
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise PolicyError("Statement must be an object or a non-empty list of objects")
    statements = []
    for index, item in enumerate(raw):
        where = f"Statement[{index}]"
        if not isinstance(item, Mapping):
            raise PolicyError(f"{where} must be an object")
        # NotAction, NotResource, Principal and Condition change the meaning of a statement;
        # ignoring them would grant more than the author wrote, so they are refused.
        extra = sorted(set(item) - STATEMENT_KEYS)
        if extra:
            raise PolicyError(f"{where}: unsupported keys: {', '.join(extra)}")
        effect = item.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise PolicyError(f"{where}: Effect must be Allow or Deny")
        statements.append(
            Statement(
                effect == "Allow",
                _strings(item, "Action", where),
                _strings(item, "Resource", where),
            )
        )
    return Policy(dict(document), tuple(statements))
