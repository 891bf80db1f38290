"""The controller webhook's words for the semantic rules of :mod:`meshplane.model.problems`.

The rules are defined once, in :mod:`meshplane.model.rules`; the manifest front
door renders their problems as aws-app-mesh-controller-for-k8s's validating
webhook worded them, so users of the controller read the messages they know.
A rule without an entry here is one the webhook never applied (the REST API's
own, such as reserved prefixes); manifests still meet it when their converted
spec goes through the API's checks (:mod:`meshplane.manifests.planning`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshplane.model.problems import Problem, Wording, say


def _exactly_one(facts: Mapping[str, Any]) -> str:
    present = facts["present"]
    found = f" (found {', '.join(present)})" if present else " (found none)"
    return f"must set exactly one of {', '.join(facts['members'])}{found}"


def _header_match_one(facts: Mapping[str, Any]) -> str:
    what = facts["what"]
    if not facts["present"]:
        return f"missing match criteria for a {what} match block"
    return f"too many match filters specified, only 1 allowed per {what}"


WEBHOOK: dict[str, Wording] = {
    "exactly-one": _exactly_one,
    "ref-or-arn": lambda f: f"must set exactly one of {', '.join(f['members'])}",
    "arn-kind": lambda f: f"{f['arn']!r} is not a {f['kind']} ARN",
    "connection-pool-one": lambda f: f"only one type of {f['of']} connection pool is allowed",
    "service-discovery-required": "must be specified when a listener is specified",
    "backend-unique": lambda f: f"duplicate backend virtual service {f['identity']}",
    "route-name-unique": lambda f: f"duplicate route name {f['identity']!r}",
    "prefix-xor-path": "both prefix and path cannot be specified, only 1 allowed",
    "prefix-or-path": "either prefix or path must be specified",
    "gateway-match-required": "either prefix or path or hostname must be specified",
    "prefix-slash": "prefix to be matched on must start with '/'",
    "header-match-one": _header_match_one,
    "header-range-order": "end has to be greater than start",
    "query-exact-required": "missing exact match criteria",
    "grpc-gateway-match-required": "either serviceName or hostname must be specified",
    "rewrite-required": "either prefix, path or hostname for rewrite must be specified",
    "rewrite-prefix-xor-path": (
        "both prefix and path for rewrites cannot be specified, only 1 allowed"
    ),
    "rewrite-prefix-one": "cannot specify both defaultPrefix and value, only 1 allowed",
    "rewrite-prefix-slashes": "new rewrite prefix must start and end with '/'",
}


def render(problem: Problem) -> tuple[str, str]:
    """A problem as the webhook words it: ``(field path, message)``."""
    return problem.path, say(WEBHOOK[problem.rule], problem.facts)
