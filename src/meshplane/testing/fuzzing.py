"""A model-driven fuzzer of the App Mesh API: botocore's shapes in, three invariants out.

Requests are built from the service model itself (every operation's HTTP
binding, every input shape), mostly valid and then mutated with what attackers
and buggy clients send: lone UTF-16 surrogates, ``/`` and ``..`` in names,
names too long for a request line, numbers past 2**63, wrong JSON types,
unknown fields, forged ``nextToken`` values, regexes RE2 refuses. Names are
drawn from a small pool so creates, describes, updates and deletes meet the
same resources. Each request is sent raw (the fuzzer serializes; boto3 would
refuse much of this client-side) through :class:`meshplane.client.Transport`,
so it is signed whenever the control plane requires it.

The invariants, checked after every request:

- **no 5xx**: a server error is a bug, whatever was sent;
- **every 4xx names what was wrong**: a JSON ``{"__type", "message"}`` body
  whose message names an input field (or the request body) and a rule;
- **a rejected request changes nothing**: the store revision (``/healthz``)
  is the same before and after.

The same seed gives the same requests. ``tests/api/test_api_fuzzer.py`` runs
a few thousand; ``bench/fuzz.py`` runs as many as asked.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import random
import urllib.parse
from typing import Any

from meshplane.client.transport import Transport
from meshplane.model import apimodel

MESHES = ("fz0", "fz1")
NAMES = ("a", "b", "svc.local")
HOSTILE_STRINGS = (
    "\ud800",
    "x\udfffy",
    "a/virtualNode/b",
    "..",
    ".",
    "",
    " ",
    "\x00",
    "\U0001f600" * 300,
    "z" * 5000,
    "%2F",
    "(?<=a)b",
    "(a)\\1",
    "a{1001}",
    "a{4294967296}",
    "[z-a]",
)
HOSTILE_NUMBERS = (-1, 0, 2**31, 2**32, 2**63, 10**30, -(2**63) - 1)
HOSTILE_VALUES: tuple[Any, ...] = (None, True, [], {}, "1", 1.5, [[[[[]]]]], {"x": 1})
FORGED_TOKENS = (
    "eyJ2IjoxLCJzIjoieCIsImEiOjEwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwfQ",
    "garbage!!",
    "eyJ2IjoyLCJzIjoieCIsImEiOjF9.AAAAAAAAAAAAAAAAAAAAAA",
)


@dataclasses.dataclass(frozen=True)
class Finding:
    """One request that broke an invariant."""

    operation: str
    invariant: str
    status: int
    detail: str
    request: str


@dataclasses.dataclass
class Report:
    """What a run sent, what came back, and every broken invariant."""

    requests: int = 0
    statuses: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)
    findings: list[Finding] = dataclasses.field(default_factory=list)

    @property
    def server_errors(self) -> int:
        """Responses with a 5xx status."""
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def summary(self) -> str:
        """One line: requests, statuses, broken invariants."""
        counts = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return (
            f"{self.requests} requests ({counts}); {self.server_errors} 5xx; "
            f"{len(self.findings)} broken invariants"
        )


class Fuzzer:
    """Sends seeded, model-built requests and checks each answer."""

    def __init__(self, transport: Transport, seed: int, mutation_rate: float = 0.15) -> None:
        """Fuzz through ``transport``; ``seed`` fixes every choice."""
        self._transport = transport
        self._random = random.Random(seed)
        self._rate = mutation_rate
        self._operations = [apimodel.operation(n) for n in apimodel.operation_names()]

    # -- generation ------------------------------------------------------------------------

    def _maybe_hostile(self, shape: Any) -> tuple[bool, Any]:
        if self._random.random() >= self._rate:
            return False, None
        pool: tuple[Any, ...]
        if shape.type_name == "string":
            pool = HOSTILE_STRINGS + HOSTILE_VALUES
        elif shape.type_name in ("integer", "long"):
            pool = HOSTILE_NUMBERS + HOSTILE_VALUES
        else:
            pool = HOSTILE_VALUES + HOSTILE_STRINGS[:3]
        return True, self._random.choice(pool)

    def value(self, shape: Any, member: str = "", depth: int = 0) -> Any:
        """A value for ``shape``: usually valid, sometimes hostile."""
        hostile, chosen = self._maybe_hostile(shape)
        if hostile:
            return chosen
        kind = shape.type_name
        if kind == "structure":
            return self._structure(shape, depth)
        if kind == "list":
            count = self._random.choice((0, 1, 1, 2, 3)) if depth < 6 else 0
            return [self.value(shape.member, member, depth + 1) for _ in range(count)]
        if kind == "map":
            return {
                self.value(shape.key, member, depth + 1): self.value(shape.value, member, depth + 1)
                for _ in range(self._random.choice((0, 1, 2)))
            }
        if kind == "string":
            return self._string(shape, member)
        if kind in ("integer", "long"):
            low = shape.metadata.get("min", 0)
            high = shape.metadata.get("max", low + 100)
            return self._random.randint(int(low), int(high))
        if kind == "boolean":
            return self._random.random() < 0.5
        if kind == "timestamp":
            return self._random.randint(0, 2_000_000_000)
        return None

    def _structure(self, shape: Any, depth: int) -> dict[str, Any]:
        members = shape.members
        if shape.is_tagged_union:
            chosen = [self._random.choice(list(members))] if members else []
        else:
            chosen = [
                name
                for name in members
                if name in shape.required_members or (depth < 5 and self._random.random() < 0.4)
            ]
        body = {
            name: self.value(members[name], name, depth + 1)
            for name in chosen
            if members[name].serialization.get("location") not in ("uri", "querystring")
        }
        if self._random.random() < self._rate / 5:
            body["unknownField"] = 1
        return body

    def _string(self, shape: Any, member: str) -> str:
        if shape.enum:
            return str(self._random.choice(shape.enum))
        lowered = member.lower()
        if lowered == "meshname":
            return self._random.choice(MESHES)
        if lowered.endswith("name") or lowered in ("virtualnode", "virtualservice"):
            return self._random.choice(NAMES)
        if lowered == "resourcearn":
            return f"arn:aws:appmesh:us-west-2:123456789012:mesh/{self._random.choice(MESHES)}"
        if lowered == "nexttoken":
            return self._random.choice(FORGED_TOKENS)
        if lowered == "regex":
            return self._random.choice(("^/a.*", "[0-9]+", "(?i)x"))
        low = int(shape.metadata.get("min", 1))
        high = min(int(shape.metadata.get("max", 12)), 12)
        size = self._random.randint(low, max(low, high))
        return "".join(self._random.choice("abcdefghij/-_.") for _ in range(size))

    def request(self) -> tuple[Any, str, str, bytes | None]:
        """One request: the operation, method, path with query, and JSON body."""
        operation = self._random.choice(self._operations)
        shape = operation.input_shape
        path = operation.http["requestUri"]
        query: list[tuple[str, str]] = []
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "uri":
                raw = self.value(member, name)
                text = raw if isinstance(raw, str) else json.dumps(raw)
                encoded = urllib.parse.quote(text.encode("utf-8", "surrogatepass"), safe="")
                path = path.replace("{" + wire + "}", encoded)
            elif location == "querystring" and self._random.random() < 0.4:
                raw = self.value(member, name)
                text = raw if isinstance(raw, str) else json.dumps(raw)
                query.append((wire, text))
        if query:
            encoded_query = "&".join(
                f"{k}={urllib.parse.quote(v.encode('utf-8', 'surrogatepass'), safe='')}"
                for k, v in query
            )
            path = f"{path}?{encoded_query}" if "?" not in path else f"{path}&{encoded_query}"
        body_value = self._structure(shape, 0)
        body = (
            json.dumps(body_value).encode() if operation.http["method"] in ("PUT", "POST") else None
        )
        return operation, operation.http["method"], path, body

    # -- checking --------------------------------------------------------------------------

    def _revision(self) -> int:
        status, raw = self._transport.send("GET", "/healthz")
        if status != 200:
            raise RuntimeError(f"/healthz answered {status}: {raw[:200]!r}")
        return int(json.loads(raw)["revision"])

    def run(self, requests: int) -> Report:
        """Send ``requests`` requests; every broken invariant is in the report."""
        report = Report()
        revision = self._revision()
        for _ in range(requests):
            operation, method, path, body = self.request()
            status, raw = self._transport.send(method, path, body)
            report.requests += 1
            report.statuses[status] += 1
            shown = f"{method} {path[:200]} {body[:300]!r}" if body else f"{method} {path[:200]}"

            def found(invariant: str, detail: str) -> None:
                report.findings.append(
                    Finding(operation.name, invariant, status, detail[:500], shown)  # noqa: B023
                )

            if status >= 500:
                found("no 5xx", raw[:500].decode("utf-8", "replace"))
            after = self._revision()
            if status >= 400:
                problem = _unnamed(operation, raw)
                if problem:
                    found("4xx names a field and rule", problem)
                if after != revision:
                    found("rejected changes nothing", f"revision {revision} -> {after}")
            revision = after
        return report


def _unnamed(operation: Any, raw: bytes) -> str | None:
    """Why a 4xx body fails to say what was wrong, or ``None`` when it does."""
    try:
        body = json.loads(raw)
    except ValueError:
        return f"not JSON: {raw[:200]!r}"
    if not isinstance(body, dict) or not body.get("__type") or not body.get("message"):
        return f"no __type and message: {raw[:200]!r}"
    message = str(body["message"])
    if body["__type"] != "BadRequestException":
        return None  # NotFound, Conflict, ResourceInUse, LimitExceeded name the resource
    fields = set(operation.input_shape.members) | {"request", "nextToken", "limit"}
    if any(field in message for field in fields) and ":" in message:
        return None
    return f"BadRequest naming no input field: {message[:300]}"
