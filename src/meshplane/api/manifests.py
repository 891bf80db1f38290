"""HTTP endpoints of the manifest front door, under ``/meshplane/v1/``.

``meshplane apply/get/describe/delete/label`` talk to these; any terminal
reaches the same objects. Bodies are JSON. Failures answer
``{"reason": ..., "errors": [...]}`` with kubectl's reasons: ``Invalid`` (422)
for manifests that do not pass, ``NotFound`` (404), ``BadRequest`` (400).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from meshplane.api import offloading, screening
from meshplane.manifests import converging, crds, documents, foreign
from meshplane.manifests.frontdoor import FrontDoor, NotFoundError, Outcome
from meshplane.manifests.objects import ManifestError, ManifestObject
from meshplane.model import errors
from meshplane.store.records import Event

PREFIX = "/meshplane/v1"
FRONT_DOOR_KEY = web.AppKey("manifest_front_door", FrontDoor)

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.Response]]


class _Failure(Exception):
    def __init__(self, status: int, reason: str, lines: list[str]) -> None:
        super().__init__(reason)
        self.status, self.reason, self.lines = status, reason, lines


def _fail(status: int, reason: str, lines: list[str]) -> web.Response:
    return web.json_response({"reason": reason, "errors": lines}, status=status)


def _guarded(handler: Callable[[web.Request, FrontDoor], Awaitable[Any]]) -> Handler:
    """Run a handler and turn the front door's errors into kubectl-shaped answers."""

    async def handle(request: web.Request) -> web.Response:
        try:
            result = await handler(request, request.app[FRONT_DOOR_KEY])
        except _Failure as failure:
            return _fail(failure.status, failure.reason, failure.lines)
        except ManifestError as error:
            return _fail(422, "Invalid", error.problems)
        except NotFoundError as error:
            return _fail(404, "NotFound", [str(error)])
        except converging.NotConverged as error:
            return _fail(500, "NotConverged", [str(error)])
        except errors.AppMeshError as error:
            return _fail(error.http_status, error.code, [error.message])
        except Exception:
            request_id = str(uuid.uuid4())
            log.exception("%s %s failed (%s)", request.method, request.path, request_id)
            return _fail(
                500,
                "InternalError",
                [
                    f"{request.method} {request.path} failed unexpectedly; see the server log "
                    f"({request_id})"
                ],
            )
        return web.json_response(result)

    return handle


async def _json(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object: on the manifest worker, in the screening process if large."""
    raw = await request.read()
    offload = _worker(request)
    run = offload.screen.run if len(raw) >= screening.SCREEN_BYTES else offload.manifest
    try:
        return await run(screening.manifest_body, raw)
    except screening.EnvelopeError as error:
        raise _Failure(400, "BadRequest", [str(error)]) from error


def _worker(request: web.Request) -> offloading.Offload:
    return request.app[offloading.OFFLOAD_KEY]


async def _documents(
    request: web.Request,
) -> tuple[list[documents.Document], list[foreign.Skipped]]:
    """The request's parsed documents: in the screening process when the body is large.

    Either way the same function parses them (:func:`screening.screen_manifests`), so a
    large body is refused with exactly the lines a small one would get.
    """
    raw = await request.read()
    offload = _worker(request)
    if len(raw) >= screening.SCREEN_BYTES:
        outcome, detail = await offload.screen.run(screening.screen_manifests, raw)
    else:
        outcome, detail = await offload.manifest(screening.screen_manifests, raw)
    if outcome == "envelope":
        raise _Failure(400, "BadRequest", [detail])
    if outcome == "invalid":
        raise ManifestError(detail)
    pickled, skipped = detail
    return await offload.manifest(screening.unpickle_documents, pickled), skipped


def _kind(word: str) -> crds.KindInfo:
    info = crds.lookup(word)
    if info is None:
        raise _Failure(404, "NotFound", [f'the server doesn\'t have a resource type "{word}"'])
    return info


def _document(obj: ManifestObject) -> dict[str, Any]:
    document = obj.to_document()
    document["metadata"]["creationEpoch"] = obj.created_at  # for AGE, exact
    return document


def _outcomes(outcomes: Sequence[Outcome | foreign.Skipped]) -> dict[str, Any]:
    return {"results": [outcome.to_json() for outcome in outcomes]}


async def _apply(request: web.Request, door: FrontDoor) -> Any:
    batch, skipped = await _documents(request)
    outcomes = await _worker(request).manifest(door.apply_parsed, batch, skipped)
    return _outcomes(outcomes)


async def _adoptions(request: web.Request, door: FrontDoor) -> Any:
    """Answer ``apply --dry-run``: the API-created resources this apply would adopt."""
    batch, _ = await _documents(request)
    return {"results": await _worker(request).manifest(door.adoptions_parsed, batch)}


async def _delete_documents(request: web.Request, door: FrontDoor) -> Any:
    batch, skipped = await _documents(request)
    outcomes = await _worker(request).manifest(door.delete_parsed, batch, skipped)
    return _outcomes(outcomes)


async def _list(request: web.Request, door: FrontDoor) -> Any:
    info = _kind(request.match_info["kind"])
    namespace = request.query.get("namespace")
    return {
        "kind": info.kind,
        "items": [_document(o) for o in door.list_objects(info.kind, namespace)],
    }


def _event(event: Event) -> dict[str, Any]:
    return {
        "type": event.type,
        "reason": event.reason,
        "message": event.message,
        "count": event.count,
        "firstTimestamp": event.first_at,
        "lastTimestamp": event.last_at,
    }


async def _get(request: web.Request, door: FrontDoor) -> Any:
    info = _kind(request.match_info["kind"])
    obj = door.get(info.kind, request.query.get("namespace", "default"), request.match_info["name"])
    events = [_event(e) for e in door.events(obj)]
    answer: dict[str, Any] = {"object": _document(obj), "events": events}
    found = door.tls_state(obj)
    if found is not None:
        answer["tls"] = found
    return answer


async def _list_events(request: web.Request, door: FrontDoor) -> Any:
    """Every object's recent events (of ``?namespace=`` if given), oldest first."""
    namespace = request.query.get("namespace")
    found = [
        {**_event(event), "object": {"kind": o.kind, "namespace": o.namespace, "name": o.name}}
        for o in door.catalog().all()
        if namespace is None or o.namespace == namespace
        for event in door.events(o)
    ]
    found.sort(key=lambda e: (e["lastTimestamp"], e["object"]["kind"], e["object"]["name"]))
    return {"items": found}


WATCH_SECONDS = 30.0
"""The longest ``GET /changes`` holds a request before it answers the same position."""


async def _changes(request: web.Request, door: FrontDoor) -> Any:
    """``?after=N&seen=M[&timeout=S]`` (``get -w``): the position once it moved past N.M.

    N is the store's revision (App Mesh resources, as the sync stage and the console
    follow it), M the feed's count of commits that wrote manifest objects (their status,
    labels, deletion marks): both move with every replica's commits, so a watcher hears
    of any change when it is committed, whichever replica wrote it. After ``timeout``
    seconds (at most 30) it answers the same position. The wait costs no work: both
    counts are woken by the store (a commit here, ``NOTIFY`` from another replica).
    """
    try:
        after = int(request.query.get("after", "0"))
        seen = int(request.query.get("seen", "0"))
        timeout = min(WATCH_SECONDS, max(0.0, float(request.query.get("timeout", "0"))))
    except ValueError as error:
        raise _Failure(
            400, "BadRequest", ["after and seen must be integers, timeout a number"]
        ) from error
    feed = door.store.feed
    waiters = {
        asyncio.ensure_future(feed.wait(after)),
        asyncio.ensure_future(feed.objects.wait(seen)),
    }
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    return {"revision": door.store.revision(), "seen": feed.objects.revision}


async def _delete(request: web.Request, door: FrontDoor) -> Any:
    info = _kind(request.match_info["kind"])
    namespace = request.query.get("namespace", "default")
    name = request.match_info["name"]
    outcome = await _worker(request).manifest(door.delete, info.kind, namespace, name)
    return _outcomes([outcome])


async def _label(request: web.Request, door: FrontDoor) -> Any:
    body = await _json(request)
    labels = body.get("labels")
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in labels.items()
    ):
        raise _Failure(400, "BadRequest", ['body must be {"labels": {"key": "value" | null}}'])
    outcome = await _worker(request).manifest(
        door.label, request.match_info["name"], labels, bool(body.get("overwrite"))
    )
    return _outcomes([outcome])


def add_routes(app: web.Application, front_door: FrontDoor) -> None:
    """Register the manifest endpoints; call before any catch-all route."""
    app[FRONT_DOOR_KEY] = front_door
    app.router.add_post(f"{PREFIX}/manifests/apply", _guarded(_apply))
    app.router.add_post(f"{PREFIX}/manifests/delete", _guarded(_delete_documents))
    app.router.add_post(f"{PREFIX}/manifests/adoptions", _guarded(_adoptions))
    app.router.add_get(f"{PREFIX}/objects/{{kind}}", _guarded(_list))
    app.router.add_get(f"{PREFIX}/objects/{{kind}}/{{name}}", _guarded(_get))
    app.router.add_delete(f"{PREFIX}/objects/{{kind}}/{{name}}", _guarded(_delete))
    app.router.add_post(f"{PREFIX}/namespaces/{{name}}/labels", _guarded(_label))
    app.router.add_get(f"{PREFIX}/events", _guarded(_list_events))
    app.router.add_get(f"{PREFIX}/changes", _guarded(_changes))
