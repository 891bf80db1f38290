"""``meshplane demo``: the blue-green walkthrough, non-interactive, with narration.

It starts a private control plane on free ports in a temporary data dir, builds
the walkthrough's mesh through the App Mesh REST API (the same calls ``aws
appmesh`` makes), shifts the route's weights 100/0 → 50/50 → 0/100 and checks
what the API reports after each step. It exits non-zero if any step misbehaves.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from rich.console import Console

from meshplane import app, settings

MESH = "demos"
ROUTER = "vr-echo-backend"
ROUTE = "vrr-echo-backend"
SERVICE = "vs-echo-backend"


class DemoFailed(Exception):
    """A step of the walkthrough did not do what it should."""


class _Api:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.endpoint + path,
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise DemoFailed(f"{method} {path}: {exc.code} {exc.read().decode()}") from exc


def _node(name: str, hostname: str, backends: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
        "serviceDiscovery": {"dns": {"hostname": hostname}},
    }
    if backends:
        spec["backends"] = [{"virtualService": {"virtualServiceName": b}} for b in backends]
    return {"virtualNodeName": name, "spec": spec}


def _route(blue: int, green: int) -> dict[str, Any]:
    return {
        "httpRoute": {
            "match": {"prefix": "/"},
            "action": {
                "weightedTargets": [
                    {"virtualNode": "vn-echo-backend-blue", "weight": blue},
                    {"virtualNode": "vn-echo-backend-green", "weight": green},
                ]
            },
        }
    }


def _walk(api: _Api, say: Console) -> None:
    base = f"/v20190125/meshes/{MESH}"
    say.rule("1. the mesh and the backend virtual nodes")
    api.call(
        "PUT",
        "/v20190125/meshes",
        {"meshName": MESH, "spec": {"egressFilter": {"type": "DROP_ALL"}}},
    )
    for colour in ("blue", "green"):
        api.call(
            "PUT",
            f"{base}/virtualNodes",
            _node(f"vn-echo-backend-{colour}", f"echo-backend-{colour}.{MESH}.svc.cluster.local"),
        )
    names = [n["virtualNodeName"] for n in api.call("GET", f"{base}/virtualNodes")["virtualNodes"]]
    say.print(f"aws appmesh list-virtual-nodes → {names}")
    say.rule("2. the router and its route at 100/0, the virtual service, the frontend")
    api.call(
        "PUT",
        f"{base}/virtualRouters",
        {
            "virtualRouterName": ROUTER,
            "spec": {"listeners": [{"portMapping": {"port": 80, "protocol": "http"}}]},
        },
    )
    api.call(
        "PUT", f"{base}/virtualRouter/{ROUTER}/routes", {"routeName": ROUTE, "spec": _route(100, 0)}
    )
    api.call(
        "PUT",
        f"{base}/virtualServices",
        {
            "virtualServiceName": SERVICE,
            "spec": {"provider": {"virtualRouter": {"virtualRouterName": ROUTER}}},
        },
    )
    api.call(
        "PUT",
        f"{base}/virtualNodes",
        _node("vn-echo-frontend-blue", f"echo-frontend-blue.{MESH}.svc.cluster.local", [SERVICE]),
    )
    expected_version = 1
    for blue, green in ((100, 0), (50, 50), (0, 100)):
        if (blue, green) != (100, 0):
            say.rule(f"shift the weights to {blue}/{green}")
            api.call(
                "PUT",
                f"{base}/virtualRouter/{ROUTER}/routes/{ROUTE}",
                {"spec": _route(blue, green)},
            )
            expected_version += 1
        route = api.call("GET", f"{base}/virtualRouter/{ROUTER}/routes/{ROUTE}")
        targets = route["spec"]["httpRoute"]["action"]["weightedTargets"]
        weights = {t["virtualNode"]: t["weight"] for t in targets}
        version = route["metadata"]["version"]
        say.print(f"aws appmesh describe-route → version {version}, weights {weights}")
        if version != expected_version or list(weights.values()) != [blue, green]:
            raise DemoFailed(
                f"expected version {expected_version} and {blue}/{green}, got {version} {weights}"
            )


async def _run(say: Console) -> None:
    with tempfile.TemporaryDirectory(prefix="meshplane-demo-") as data_dir:
        config = settings.load(environ={}, data_dir=Path(data_dir), api_port=0, xds_port=0)
        async with app.running(app.build(config)) as plane:
            endpoint = f"http://{config.host}:{plane.api_port}"
            say.print(f"control plane at {endpoint} (data dir {data_dir})")
            await asyncio.to_thread(_walk, _Api(endpoint), say)


def run() -> int:
    """Run the walkthrough; 0 when every step behaved, 1 otherwise."""
    say = Console()
    try:
        asyncio.run(_run(say))
    except DemoFailed as failure:
        say.print(f"[red]demo failed:[/] {failure}")
        return 1
    say.print("[green]demo passed:[/] every step behaved as App Mesh's walkthrough shows")
    return 0
