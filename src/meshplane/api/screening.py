"""Large request bodies are parsed and checked in another process before the server touches them.

Worker threads (:mod:`meshplane.api.offloading`) keep one client's heavy request
off the event loop, but not off the GIL: ``json.loads`` of a 3 MB body or the YAML
parser's C scanner hold it for tens of milliseconds at a time, and every other
client's request waits that long (an added 30-160 ms p99 of describe, measured by
``python -m bench.hostile``). So a body of :data:`SCREEN_BYTES` or more is first
handed, as bytes, to one screening process, which runs exactly the store-free
checks the server would run first, in the same order:

- App Mesh writes: parse the input, check it against the model's shapes, the
  ``meshOwner`` check and the spec rules of Create*/Update*. A refusal comes back
  as the very error the server would have raised; a pass costs the server nothing
  but the round trip, and it then handles the request as it handles small ones.
- Manifests: the JSON envelope, then the YAML of every source, parsed and
  structurally checked (:func:`~meshplane.manifests.frontdoor.parse_sources`). A pass
  returns the parsed documents one pickle each, so the server never parses the
  YAML again and never unpickles one large object (each small ``loads`` gives the
  GIL back between documents).

The screen only ever refuses what the server would refuse, with the same words, so
small and large bodies behave alike; only where the work happens differs. The
functions here are pure and run in the screening process; :class:`Screen` runs them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import multiprocessing
import pickle
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from meshplane.api import inputs
from meshplane.manifests import documents, frontdoor
from meshplane.manifests.objects import ManifestError
from meshplane.model import apimodel, errors, kinds, validation
from meshplane.service import resources

T = TypeVar("T")

SCREEN_BYTES = 64 * 1024
"""Bodies this large or larger are screened in the process: parsing 64 KiB of JSON holds
the GIL for about 2 ms on this project's reference machine; 3 MB for 100 ms."""

_SPEC_OPERATIONS: dict[str, tuple[kinds.Kind, bool]] = {
    f"{verb}{kind.title}": (kind, verb == "Create")
    for kind in kinds.ALL
    for verb in ("Create", "Update")
}
"""Operations whose body carries a spec: their kind, and whether they take tags."""


def screen_operation(
    operation_name: str,
    uri: Mapping[str, str],
    query: Mapping[str, str],
    raw: bytes,
    account_id: str,
) -> errors.AppMeshError | None:
    """The error the server would raise first for this App Mesh request, or None.

    Mirrors the server's order: :func:`~meshplane.api.inputs.parse`, the input shape
    (:mod:`meshplane.model.validation`), then for a Create*/Update* the owner check and
    :func:`~meshplane.service.resources.check_input`, all before any store access.
    """
    operation = apimodel.operation(operation_name)
    try:
        values = inputs.parse(operation, uri, query, raw)
        tag_limit_error = inputs.declares(operation, errors.TooManyTagsException)
        validation.check(operation.input_shape, values, tag_limit_error=tag_limit_error)
        spec_operation = _SPEC_OPERATIONS.get(operation_name)
        if spec_operation is not None:
            kind, takes_tags = spec_operation
            resources.check_owner(account_id, values.get("meshOwner"))
            tags = list(values.get("tags") or []) if takes_tags else []
            resources.check_input(
                kind, values[kind.name_member], dict(values.get("spec") or {}), tags=tags
            )
    except errors.AppMeshError as error:
        return error
    return None


def top_level_strings(raw: bytes) -> dict[str, str]:
    """The string members at the top of a JSON body ({} for anything else or malformed JSON).

    What authorization reads to name a resource (CreateMesh's ``meshName``); a malformed
    body names none, and the handler then refuses it with a 400.
    """
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError):
        return {}
    if not isinstance(body, dict):
        return {}
    return {name: value for name, value in body.items() if isinstance(value, str)}


class EnvelopeError(Exception):
    """The manifest request's JSON envelope is malformed (a 400 ``BadRequest``)."""


def manifest_sources(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The ``sources`` of a manifest request body, or :class:`EnvelopeError`."""
    sources = body.get("sources")
    if not isinstance(sources, list) or not all(
        isinstance(s, dict) and isinstance(s.get("name"), str) and isinstance(s.get("text"), str)
        for s in sources
    ):
        raise EnvelopeError('body must be {"sources": [{"name": ..., "text": ...}]}')
    return [(s["name"], s["text"]) for s in sources]


def manifest_body(raw: bytes) -> dict[str, Any]:
    """A manifest request's JSON body as an object, or :class:`EnvelopeError`."""
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, RecursionError) as exc:  # too deep a nesting is malformed input too
        raise EnvelopeError(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise EnvelopeError("the request body must be a JSON object")
    return body


Screened = tuple[str, Any]
"""``("ok", (documents as pickles, skipped))``, ``("envelope", line)`` or ``("invalid", lines)``.

Plain tuples, because exceptions with several arguments do not survive pickling."""


def screen_manifests(raw: bytes) -> Screened:
    """Parse a manifest request (envelope, then every source's YAML) as the server would."""
    try:
        body = manifest_body(raw)
        batch, skipped = frontdoor.parse_sources(manifest_sources(body), body.get("namespace"))
    except EnvelopeError as error:
        return ("envelope", str(error))
    except ManifestError as error:
        return ("invalid", error.problems)
    return ("ok", ([pickle.dumps(document) for document in batch], skipped))


def unpickle_documents(pickled: Sequence[bytes]) -> list[documents.Document]:
    """The documents :func:`screen_manifests` returned, one small ``loads`` at a time."""
    # Our own screening process pickled these; nothing else reaches this.
    return [pickle.loads(document) for document in pickled]


def _warm() -> None:
    """Import what the screening functions need, so the first heavy request does not wait."""
    apimodel.operation("CreateMesh")


class Screen:
    """One screening process, started on the first large body and kept for later ones.

    One process, so an attacker's large bodies queue behind each other instead of
    taking more of the machine; ``spawn``, because forking a process that runs
    threads and an event loop copies locks in whatever state they were in.
    """

    def __init__(self) -> None:
        """No process yet: most servers never see a large body."""
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    1, mp_context=multiprocessing.get_context("spawn"), initializer=_warm
                )
            return self._pool

    async def run(self, work: Callable[..., T], *args: object) -> T:
        """``work(*args)`` in the screening process (started off the loop when needed).

        A screening process that died (killed, out of memory) is replaced, and the
        request that met it answers an InternalServerErrorException.
        """
        loop = asyncio.get_running_loop()
        pool = self._pool
        if pool is None:
            pool = await asyncio.to_thread(self._executor)
        try:
            return await loop.run_in_executor(pool, functools.partial(work, *args))
        except concurrent.futures.process.BrokenProcessPool as exc:
            self._forget(pool)
            raise errors.InternalServerErrorException(
                "the process that checks large requests stopped; send the request again"
            ) from exc

    def _forget(self, broken: concurrent.futures.ProcessPoolExecutor) -> None:
        """Drop a pool whose process died; the next large body starts a new one."""
        with self._lock:
            if self._pool is broken:
                self._pool = None
        broken.shutdown(wait=False)

    def shutdown(self) -> None:
        """Stop the screening process, if one runs."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
