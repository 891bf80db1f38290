"""The console's one write: a route's weights, explicit and checked like an API call.

The App Mesh console was read-only; the one change worth a button is a traffic shift. It
is offered as a form per route, submitted on purpose, and refused unless all of these hold:

- **same origin** — the console's guard (:mod:`meshplane.console.serving`) refuses a
  POST without this server's ``Origin``;
- **a form token** — a hidden field that is an HMAC of the session cookie
  (:meth:`~meshplane.console.sessions.Sessions.form_token`): a page of another origin can
  neither read it nor guess it, and it dies with the session;
- **permission** — the session's access key must be a principal of the control plane whose
  policy allows ``appmesh:UpdateRoute`` on that route's ARN, exactly as a signed
  ``UpdateRoute`` would need (a console-only key, or ``--auth none``, reads only);
- **a valid change** — one integer weight from 0 to 100 for each of the route's current weighted
  targets, no more, no fewer; the write goes through the same service call as the API's
  ``UpdateRoute`` (version + 1, validation, quotas).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from meshplane.auth.policies import Decision
from meshplane.auth.principals import Principals
from meshplane.model import kinds

ACTION = "appmesh:UpdateRoute"
ROUTE_KINDS = ("httpRoute", "http2Route", "grpcRoute", "tcpRoute")
FIELD = "weight:"
"""Form fields ``weight:<virtual node>`` carry the new weights."""


class EditRefused(Exception):
    """The change is not made; ``status`` is the HTTP status, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        """Keep the status for the response."""
        super().__init__(message)
        self.status = status


def route_arn(region: str, account: str, mesh: str, router: str, route: str) -> str:
    """The ARN a policy is asked about."""
    return kinds.arn(region, account, kinds.ResourceKey.of(kinds.ROUTE, mesh, route, router))


def check_permission(principals: Principals | None, access_key_id: str, arn: str) -> None:
    """Refuse (403) unless the key is a principal whose policy allows UpdateRoute on ``arn``."""
    if principals is None:
        raise EditRefused(403, "editing needs the control plane's principals (it runs --auth none)")
    principal = principals.by_access_key(access_key_id)
    if principal is None:
        raise EditRefused(
            403, f"{access_key_id} is a console-only key: it may read, not change, the mesh"
        )
    decision = principal.policy.decide(ACTION, arn)
    if decision is not Decision.ALLOW:
        raise EditRefused(403, f"{principal.name} may not {ACTION} on {arn}: {decision.value}")


def weights_from(form: Mapping[str, str]) -> dict[str, int]:
    """The ``weight:<node>`` fields as integers 0..100 (400 for anything else)."""
    found: dict[str, int] = {}
    for field, value in form.items():
        if not field.startswith(FIELD):
            continue
        node = field[len(FIELD) :]
        text = value.strip()
        if not text.isdecimal() or not text.isascii() or int(text) > 100:
            raise EditRefused(400, f"the weight of {node} must be a whole number from 0 to 100")
        found[node] = int(text)
    return found


def reweighted(spec: Mapping[str, Any], weights: Mapping[str, int]) -> dict[str, Any]:
    """``spec`` with its weighted targets' weights replaced (400 unless they match exactly)."""
    kind = next((k for k in ROUTE_KINDS if k in spec), None)
    if kind is None:
        raise EditRefused(400, "the route has no weighted targets")
    changed = copy.deepcopy(dict(spec))
    targets = changed[kind].get("action", {}).get("weightedTargets", [])
    current = {str(t.get("virtualNode")) for t in targets}
    if set(weights) != current:
        raise EditRefused(
            400,
            f"give one weight for each of the route's targets ({', '.join(sorted(current))}); "
            "reload the page if the route changed",
        )
    for target in targets:
        target["weight"] = weights[str(target["virtualNode"])]
    return changed
