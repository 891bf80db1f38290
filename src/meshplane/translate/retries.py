"""App Mesh retry policies as Envoy ``RetryPolicy`` messages.

App Mesh names retry *events*; Envoy names retry *conditions* plus a list of
status codes. The mapping follows App Mesh's documentation and its observed
dumps (``appmesh-controller.md`` §3.5): status-code events become
``retriable-status-codes`` with an explicit code list, server and gateway
errors also retry on ``reset``, and every retry avoids the host that just
failed (``previous_hosts``, 5 attempts). When a route gives no policy, App
Mesh silently applies its default one, and so does meshplane.
"""

from __future__ import annotations

from envoy.config.route.v3 import route_components_pb2 as route_pb
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2

from meshplane.model import specs_generated as g
from meshplane.translate import durations, specs

SERVER_ERROR_CODES = (*range(500, 509), 510, 511)
GATEWAY_ERROR_CODES = (502, 503, 504)
HTTP_EVENT_CODES: dict[str, tuple[int, ...]] = {
    "server-error": SERVER_ERROR_CODES,
    "gateway-error": GATEWAY_ERROR_CODES,
    "client-error": (409,),
}
HTTP_EVENT_CONDITIONS: dict[str, tuple[str, ...]] = {
    "server-error": ("reset",),
    "gateway-error": ("reset",),
    "stream-error": ("refused-stream",),
}
TCP_EVENT_CONDITIONS = {"connection-error": "connect-failure"}
GRPC_EVENTS = frozenset(
    {"cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable"}
)

DEFAULT_MAX_RETRIES = 2
"""App Mesh's invisible default: 2 retries on 503, connect-failure, refused-stream, reset."""
HOST_SELECTION_ATTEMPTS = 5


def build_retry_policy(
    policy: g.HttpRetryPolicy | g.GrpcRetryPolicy | None, *, grpc: bool
) -> route_pb.RetryPolicy:
    """Translate an App Mesh ``HttpRetryPolicy``/``GrpcRetryPolicy`` to Envoy's.

    ``None`` gives App Mesh's default policy, applied to every HTTP, HTTP/2 and
    gRPC route without one (accounts since 2020-07-29): 2 retries on HTTP 503,
    connect-failure, refused-stream and reset, plus gRPC ``unavailable`` on
    gRPC routes; the per-try timeout is left to the route timeout.
    """
    conditions: set[str]
    if policy is None:
        conditions = {"connect-failure", "refused-stream", "reset"}
        if grpc:
            conditions.add("unavailable")
        return _message(conditions, {503}, DEFAULT_MAX_RETRIES, None)
    conditions = set()
    codes: set[int] = set()
    for event in policy.http_retry_events or ():
        codes.update(HTTP_EVENT_CODES.get(event, ()))
        conditions.update(HTTP_EVENT_CONDITIONS.get(event, ()))
    for tcp_event in policy.tcp_retry_events or ():
        if tcp_event in TCP_EVENT_CONDITIONS:
            conditions.add(TCP_EVENT_CONDITIONS[tcp_event])
    if isinstance(policy, g.GrpcRetryPolicy):
        conditions.update(e for e in policy.grpc_retry_events or () if e in GRPC_EVENTS)
    per_try_ms = specs.duration_ms(policy.per_retry_timeout)
    return _message(conditions, codes, policy.max_retries, per_try_ms)


def _message(
    conditions: set[str], codes: set[int], retries: int | None, per_try_ms: int | None
) -> route_pb.RetryPolicy:
    """Assemble the Envoy message; condition and code lists sorted for stable output."""
    if codes:
        conditions = conditions | {"retriable-status-codes"}
    message = route_pb.RetryPolicy(
        retry_on=",".join(sorted(conditions)),
        retriable_status_codes=sorted(codes),
        host_selection_retry_max_attempts=HOST_SELECTION_ATTEMPTS,
    )
    if retries is not None:
        message.num_retries.value = retries
    if per_try_ms:
        message.per_try_timeout.CopyFrom(durations.of_ms(per_try_ms))
    predicate = message.retry_host_predicate.add(name="envoy.retry_host_predicates.previous_hosts")
    predicate.typed_config.Pack(previous_hosts_pb2.PreviousHostsPredicate())
    return message
