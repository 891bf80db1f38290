"""Large bodies are screened in another process: same answers as small ones, nothing written.

The control plane runs in this process (``meshplane.testing.ControlPlane``), so a test
can turn the screen off (raise :data:`screening.SCREEN_BYTES`) and compare the answers
of the same request with and without it, and can see the screening process among this
process's children.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshplane.api import screening
from meshplane.testing import ControlPlane

ROUTERS = "/v20190125/meshes/big/virtualRouters"
NODES = "/v20190125/meshes/big/virtualNodes"
APPLY = "/meshplane/v1/manifests/apply"
COMMENT = "a comment as long as real manifests carry " * 6


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[ControlPlane]:
    """An in-process control plane with a mesh ``big``."""
    with ControlPlane(tmp_path / "data") as running:
        running.appmesh().create_mesh(meshName="big")
        yield running


def _send(plane: ControlPlane, method: str, path: str, body: bytes) -> tuple[int, Any]:
    url = plane.endpoint + path
    signer = plane.signer()
    assert signer is not None
    headers = signer.sign(method, url, body, {"Content-Type": "application/json"})
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def _router_with_repeated_ports(listeners: int) -> bytes:
    ports = [
        {"portMapping": {"port": 8000 + i % 100, "protocol": "http"}} for i in range(listeners)
    ]
    return json.dumps({"virtualRouterName": "r", "spec": {"listeners": ports}}).encode()


def _revision(plane: ControlPlane) -> int:
    with urllib.request.urlopen(plane.endpoint + "/healthz", timeout=10) as response:
        return int(json.loads(response.read())["revision"])


def _screeners() -> list[multiprocessing.Process]:
    return [p for p in multiprocessing.active_children() if p.is_alive()]


def test_a_large_invalid_body_is_refused_by_the_screen_with_the_servers_own_words(
    plane: ControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The screen's refusal of a 100 KB body is byte-identical to the server's own."""
    body = _router_with_repeated_ports(1800)
    assert len(body) >= screening.SCREEN_BYTES
    revision = _revision(plane)
    screened = _send(plane, "PUT", ROUTERS, body)
    assert len(_screeners()) == 1
    monkeypatch.setattr(screening, "SCREEN_BYTES", 10**9)
    unscreened = _send(plane, "PUT", ROUTERS, body)
    assert screened == unscreened
    status, answer = screened
    assert status == 400
    assert answer["__type"] == "BadRequestException"
    assert answer["message"].startswith("1700 validation errors: spec.listeners[100].portMapping")
    assert _revision(plane) == revision


def test_a_large_body_that_breaks_the_model_or_names_another_owner_is_refused_alike(
    plane: ControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Malformed JSON, an unknown member, a long tag, another meshOwner: same answers screened."""
    padding = "x" * screening.SCREEN_BYTES
    bodies = [
        b'{"virtualRouterName": "r", "spec": {' + padding.encode(),
        json.dumps({"virtualRouterName": "r", "spec": {}, "padding": padding}).encode(),
        json.dumps(
            {"virtualRouterName": "r", "spec": {}, "tags": [{"key": padding, "value": "v"}]}
        ).encode(),
    ]
    screened = [_send(plane, "PUT", ROUTERS, body) for body in bodies]
    repeated = _router_with_repeated_ports(1800)  # passes the shapes, fails a spec rule
    foreign = _send(plane, "PUT", ROUTERS + "?meshOwner=999999999999", repeated)
    monkeypatch.setattr(screening, "SCREEN_BYTES", 10**9)
    assert screened == [_send(plane, "PUT", ROUTERS, body) for body in bodies]
    assert foreign == _send(plane, "PUT", ROUTERS + "?meshOwner=999999999999", repeated)
    assert [answer.get("__type") for _, answer in screened] == ["BadRequestException"] * 3, screened
    assert screened[0][1]["message"].startswith("The request body is not valid JSON")
    assert screened[1][1]["message"].startswith("Invalid request: padding: unknown field")
    assert (
        screened[2][1]["message"]
        == "Invalid request: tags[0].key: length 65536 is above the maximum 128"
    )
    assert foreign[0] == 404
    assert foreign[1]["message"].startswith("meshOwner 999999999999: no mesh is shared")


def test_a_large_valid_body_passes_the_screen_and_is_created(plane: ControlPlane) -> None:
    """A 1,500-listener virtual node (> 64 KiB) is screened, then created as sent."""
    listeners = [{"portMapping": {"port": 10000 + i, "protocol": "tcp"}} for i in range(1500)]
    spec = {"listeners": listeners, "serviceDiscovery": {"dns": {"hostname": "n.big.local"}}}
    body = json.dumps({"virtualNodeName": "n", "spec": spec}).encode()
    assert len(body) >= screening.SCREEN_BYTES
    status, answer = _send(plane, "PUT", NODES, body)
    assert status == 200, answer
    described = plane.appmesh().describe_virtual_node(meshName="big", virtualNodeName="n")
    ports = [lst["portMapping"]["port"] for lst in described["virtualNode"]["spec"]["listeners"]]
    assert ports == list(range(10000, 11500))


def _manifest(services: int) -> bytes:
    """A Namespace, a Mesh selecting it and ``services`` virtual services (their router is
    missing: they are created, not Active)."""
    head = [
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {mesh: m2}}\n",
        "apiVersion: appmesh.k8s.aws/v1beta2\nkind: Mesh\nmetadata: {name: m2}\n"
        "spec: {namespaceSelector: {matchLabels: {mesh: m2}}}\n",
    ]
    text = "---\n".join(
        head
        + [
            f"# virtual service {i} of the shop: {COMMENT}\n"
            "apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualService\n"
            f"metadata: {{name: vs-{i}, namespace: shop}}\n"
            f"spec: {{awsName: vs-{i}.shop.local, provider: {{virtualRouter: "
            f"{{virtualRouterRef: {{name: a-router-that-does-not-exist-yet-{i}}}}}}}}}\n"
            for i in range(services)
        ]
    )
    return json.dumps({"sources": [{"name": "big.yaml", "text": text}]}).encode()


def test_a_large_manifest_is_parsed_in_the_screen_and_refused_or_applied_alike(
    plane: ControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,001 documents: the same 422 either way; 152 documents parsed by the screen apply."""
    too_many = _manifest(999)
    screened = _send(plane, "POST", APPLY, too_many)
    monkeypatch.setattr(screening, "SCREEN_BYTES", 10**9)
    assert screened == _send(plane, "POST", APPLY, too_many)
    assert screened == (
        422,
        {
            "reason": "Invalid",
            "errors": [
                "big.yaml: more than 1000 YAML documents in one source; split it "
                "(rule yaml-max-documents)"
            ],
        },
    )
    monkeypatch.undo()
    envelope = _send(plane, "POST", APPLY, json.dumps({"sources": "x" * 70000}).encode())
    assert envelope == (
        400,
        {
            "reason": "BadRequest",
            "errors": ['body must be {"sources": [{"name": ..., "text": ...}]}'],
        },
    )
    body = _manifest(150)
    assert len(body) >= screening.SCREEN_BYTES
    status, answer = _send(plane, "POST", APPLY, body)
    assert status == 200, answer
    assert len(_screeners()) == 1
    lines = [result["line"] for result in answer["results"]]
    assert lines == [
        "namespace/shop created",
        "mesh.appmesh.k8s.aws/m2 created",
        *(f"virtualservice.appmesh.k8s.aws/vs-{i} created" for i in range(150)),
    ]


def test_a_killed_screening_process_fails_one_request_and_is_replaced(plane: ControlPlane) -> None:
    """SIGKILL of the screen: that request answers 500 with a next step, the next one works."""
    body = _router_with_repeated_ports(1800)
    first = _send(plane, "PUT", ROUTERS, body)
    (screener,) = _screeners()
    assert screener.pid is not None
    os.kill(screener.pid, signal.SIGKILL)
    screener.join(timeout=30)
    failed = _send(plane, "PUT", ROUTERS, body)
    assert failed == (
        500,
        {
            "__type": "InternalServerErrorException",
            "message": "the process that checks large requests stopped; send the request again",
        },
    )
    assert _send(plane, "PUT", ROUTERS, body) == first
