"""The list+watch loop: resume from the list's resourceVersion, list again after 410 Gone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from lightkube import ApiError
from lightkube.models.meta_v1 import Status

from meshplane.k8s import watching


def _namespace(name: str, version: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": version, "labels": labels or {}}}


class _Listing:
    """What lightkube's list returns: an async iterable with the list's resourceVersion."""

    def __init__(self, items: list[dict[str, Any]], version: str) -> None:
        self._items = items
        self.resourceVersion = version

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        for item in self._items:
            yield item


class _FakeClient:
    """Lists and watches scripted in advance; records the resourceVersions asked for."""

    def __init__(self, lists: list[_Listing], watches: list[list[Any]]) -> None:
        self._lists, self._watches = lists, watches
        self.listed = 0
        self.watched_from: list[str | None] = []
        self.done = asyncio.Event()

    def list(self, resource: Any, **scope: Any) -> _Listing:
        self.listed += 1
        return self._lists.pop(0)

    async def watch(
        self, resource: Any, resource_version: str | None = None, **options: Any
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        self.watched_from.append(resource_version)
        if not self._watches:
            self.done.set()
            await asyncio.Event().wait()  # a quiet watch: nothing more happens
        for step in self._watches.pop(0):
            if isinstance(step, Exception):
                raise step
            yield step


class _Recorder:
    """Stands in for the controller: what the loop fed it, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def relist(self, kind: str, bodies: list[dict[str, Any]]) -> None:
        self.calls.append(("relist", sorted(b["metadata"]["name"] for b in bodies)))

    def observe(self, kind: str, event_type: str, body: dict[str, Any]) -> None:
        self.calls.append((event_type, body["metadata"]["name"]))


def _run(client: _FakeClient, recorder: _Recorder) -> list[float]:
    """Run the loop until the scripted watches are used up; the back-off sleeps it asked for."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def run() -> None:
        task = asyncio.create_task(
            watching.watch(
                client,  # type: ignore[arg-type]
                "Namespace",
                recorder,  # type: ignore[arg-type]
                asyncio.Event(),
                sleep=sleep,
            )
        )
        await client.done.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    return slept


def test_a_410_gone_watch_lists_again_at_once_and_resumes_from_the_new_version() -> None:
    """ADDED from the first watch, 410 Gone, then at once a fresh list and a watch from it."""
    gone = ApiError(status=Status(code=410, message="too old resource version: 5 (90)"))
    client = _FakeClient(
        lists=[_Listing([_namespace("a", "5")], "5"), _Listing([_namespace("b", "91")], "91")],
        watches=[[("ADDED", _namespace("c", "6")), gone]],
    )
    recorder = _Recorder()
    assert _run(client, recorder) == []
    assert recorder.calls == [("relist", ["a"]), ("ADDED", "c"), ("relist", ["b"])]
    assert client.watched_from == ["5", "91"]


def test_other_failures_back_off_before_listing_again() -> None:
    """An API server error (here 503) waits the back-off, then lists again."""
    down = ApiError(status=Status(code=503, message="the server is shutting down"))
    client = _FakeClient(
        lists=[_Listing([_namespace("a", "5")], "5"), _Listing([_namespace("a", "9")], "9")],
        watches=[[down]],
    )
    recorder = _Recorder()
    assert _run(client, recorder) == [1.0]
    assert recorder.calls == [("relist", ["a"]), ("relist", ["a"])]
    assert client.watched_from == ["5", "9"]
