"""HTTP endpoints of the manifest front door, under ``/meshplane/v1/``.

``meshplane apply/get/describe/delete/label`` talk to these; any terminal
reaches the same objects. Bodies are JSON. Failures answer
``{"reason": ..., "errors": [...]}`` with kubectl's reasons: ``Invalid`` (422)
for manifests that do not pass, ``NotFound`` (404), ``BadRequest`` (400).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from meshplane.api import offloading
from meshplane.manifests import converging, crds, foreign
from meshplane.manifests.frontdoor import FrontDoor, NotFoundError, Outcome
from meshplane.manifests.objects import ManifestError, ManifestObject
from meshplane.model import errors

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


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, RecursionError) as exc:  # too deep a nesting is malformed input too
        raise _Failure(400, "BadRequest", [f"the request body is not valid JSON: {exc}"]) from exc
    if not isinstance(body, dict):
        raise _Failure(400, "BadRequest", ["the request body must be a JSON object"])
    return body


async def _json(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, parsed on the manifest worker (bodies can be megabytes)."""
    return await _worker(request).manifest(_parse, await request.read())


def _worker(request: web.Request) -> offloading.Offload:
    return request.app[offloading.OFFLOAD_KEY]


def _sources(body: dict[str, Any]) -> list[tuple[str, str]]:
    sources = body.get("sources")
    if not isinstance(sources, list) or not all(
        isinstance(s, dict) and isinstance(s.get("name"), str) and isinstance(s.get("text"), str)
        for s in sources
    ):
        raise _Failure(
            400, "BadRequest", ['body must be {"sources": [{"name": ..., "text": ...}]}']
        )
    return [(s["name"], s["text"]) for s in sources]


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
    body = await _json(request)
    return _outcomes(
        await _worker(request).manifest(door.apply, _sources(body), body.get("namespace"))
    )


async def _delete_documents(request: web.Request, door: FrontDoor) -> Any:
    body = await _json(request)
    work = door.delete_documents
    return _outcomes(await _worker(request).manifest(work, _sources(body), body.get("namespace")))


async def _list(request: web.Request, door: FrontDoor) -> Any:
    info = _kind(request.match_info["kind"])
    namespace = request.query.get("namespace")
    return {
        "kind": info.kind,
        "items": [_document(o) for o in door.list_objects(info.kind, namespace)],
    }


async def _get(request: web.Request, door: FrontDoor) -> Any:
    info = _kind(request.match_info["kind"])
    obj = door.get(info.kind, request.query.get("namespace", "default"), request.match_info["name"])
    events = [
        {
            "type": e.type,
            "reason": e.reason,
            "message": e.message,
            "count": e.count,
            "firstTimestamp": e.first_at,
            "lastTimestamp": e.last_at,
        }
        for e in door.events(obj)
    ]
    answer: dict[str, Any] = {"object": _document(obj), "events": events}
    found = door.tls_state(obj)
    if found is not None:
        answer["tls"] = found
    return answer


async def _delete(request: web.Request, door: FrontDoor) -> Any:
    info = _kind(request.match_info["kind"])
    namespace = request.query.get("namespace", "default")
    name = request.match_info["name"]
    return _outcomes([await _worker(request).manifest(door.delete, info.kind, namespace, name)])


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
    app.router.add_get(f"{PREFIX}/objects/{{kind}}", _guarded(_list))
    app.router.add_get(f"{PREFIX}/objects/{{kind}}/{{name}}", _guarded(_get))
    app.router.add_delete(f"{PREFIX}/objects/{{kind}}/{{name}}", _guarded(_delete))
    app.router.add_post(f"{PREFIX}/namespaces/{{name}}/labels", _guarded(_label))
