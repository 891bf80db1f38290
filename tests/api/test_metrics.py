"""GET /metrics: a real server scraped after real API calls and a fake Envoy's ACKs and NACKs."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.request
from pathlib import Path

import botocore.exceptions
import pytest
from prometheus_client.parser import text_string_to_metric_families

from meshplane.envoy import resources
from meshplane.testing import ControlPlane, FakeAdsClient

KEY = "mesh/m/virtualNode/vn"


def scrape(plane: ControlPlane) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, keyed by (name, sorted labels)."""
    with urllib.request.urlopen(f"{plane.endpoint}/metrics", timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_api_requests_are_counted_by_operation_and_code(tmp_path: Path) -> None:
    """Two CreateMesh (200 and a 409), one 404 DescribeMesh and an unsigned unknown path (403)."""
    with ControlPlane(tmp_path) as plane:
        appmesh = plane.appmesh()
        appmesh.create_mesh(meshName="m")
        with pytest.raises(botocore.exceptions.ClientError):
            appmesh.create_mesh(meshName="m")
        with pytest.raises(botocore.exceptions.ClientError):
            appmesh.describe_mesh(meshName="absent")
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(f"{plane.endpoint}/nothing/here", timeout=10)
        samples = scrape(plane)
    requests = {
        labels: value
        for (name, labels), value in samples.items()
        if name == "meshplane_api_requests_total"
    }
    assert requests == {
        (("code", "200"), ("operation", "CreateMesh")): 1.0,
        (("code", "409"), ("operation", "CreateMesh")): 1.0,
        (("code", "404"), ("operation", "DescribeMesh")): 1.0,
        (("code", "403"), ("operation", "unknown")): 1.0,
    }
    count = ("meshplane_api_request_seconds_count", (("operation", "CreateMesh"),))
    assert samples[count] == 2.0
    assert samples[("meshplane_store_revision", ())] == 1.0


def test_propagation_pushes_nacks_and_proxy_states(tmp_path: Path) -> None:
    """A change ACKed by a following fake Envoy is one propagation; its NACK is counted."""
    with ControlPlane(tmp_path) as plane:
        token = plane.proxy_credential(KEY)
        appmesh = plane.appmesh()
        appmesh.create_mesh(meshName="m")
        appmesh.create_virtual_node(meshName="m", virtualNodeName="vn", spec={})
        meshplane = plane.client()

        async def scenario() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            async with FakeAdsClient(plane.xds_port, KEY, credential=token) as envoy:
                following = asyncio.create_task(envoy.follow())
                await asyncio.to_thread(plane.wait_for_state, KEY, "SYNCED")
                before = await asyncio.to_thread(scrape, plane)
                listener = {"portMapping": {"port": 8080, "protocol": "http"}}
                spec = {
                    "listeners": [listener],
                    "serviceDiscovery": {"dns": {"hostname": "vn.local"}},
                }
                await asyncio.to_thread(
                    appmesh.update_virtual_node, meshName="m", virtualNodeName="vn", spec=spec
                )
                synced = await asyncio.to_thread(meshplane.wait_for_revision, 3, 30)
                assert [p["state"] for p in synced.proxies] == ["SYNCED"]
                after = await asyncio.to_thread(scrape, plane)
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await following
                # The same proxy again, rejecting every listener it is sent.
            async with FakeAdsClient(plane.xds_port, KEY, credential=token) as envoy:
                rejecting = asyncio.create_task(
                    envoy.follow(lambda r: "bad port" if r.type_url == resources.LISTENER else None)
                )
                view = await asyncio.to_thread(plane.wait_for_state, KEY, "NACKED")
                assert view["types"]["Listener"]["lastNack"] == "bad port"
                nacked = await asyncio.to_thread(scrape, plane)
                rejecting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await rejecting
            return {"before": before, "after": after, "nacked": nacked}  # type: ignore[return-value]

        seen = asyncio.run(scenario())
    before, after, nacked = seen["before"], seen["after"], seen["nacked"]  # type: ignore[index]
    propagation = ("meshplane_propagation_seconds_count", ())
    assert (before[propagation], after[propagation]) == (0.0, 1.0)
    proxies = {
        labels[0][1]: value
        for (name, labels), value in after.items()
        if name == "meshplane_proxies"
    }
    assert proxies == {"SYNCED": 1.0, "STALE": 0.0, "NACKED": 0.0, "DISCONNECTED": 0.0}
    assert after[("meshplane_store_revision", ())] == 3.0
    assert after[("meshplane_translation_seconds_count", ())] == 2.0
    pushes = {
        labels[0][1]: value
        for (name, labels), value in after.items()
        if name == "meshplane_xds_pushes_total"
    }
    assert pushes == {"Cluster": 2.0, "Listener": 2.0, "RouteConfiguration": 2.0}
    assert nacked[("meshplane_xds_nacks_total", (("type", "Listener"),))] == 1.0
    assert nacked[("meshplane_proxies", (("state", "NACKED"),))] == 1.0
