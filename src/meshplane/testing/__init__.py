"""Test your own mesh configuration against a real meshplane control plane, in-process.

::

    from meshplane.testing import ControlPlane

    def test_my_routes_are_accepted(tmp_path):
        with ControlPlane(tmp_path) as plane:
            plane.apply(Path("deploy/mesh"))                  # your v1beta2 manifests
            appmesh = plane.appmesh()                         # a boto3 client bound to it
            route = appmesh.describe_route(meshName="demos", virtualRouterName="vr",
                                           routeName="r")["route"]
            assert route["status"]["status"] == "ACTIVE"

The control plane is the real one (store, App Mesh API, manifest front door,
sync, xDS) on free loopback ports, run on a thread of its own; nothing is
mocked. Public, and never imported by meshplane itself (an import contract
says so). ``appmesh()`` needs boto3, which meshplane's ``dev`` extra installs.

Two more helpers for testing what reaches Envoy:

- :class:`meshplane.testing.ads.FakeAdsClient` — a protocol-level fake Envoy on one ADS
  stream, which requests, ACKs and NACKs exactly when told (and shows the credential
  :meth:`ControlPlane.proxy_credential` issues, as every stream must), and
  :class:`meshplane.testing.delta.FakeDeltaClient`, the same over incremental (delta) ADS;
- :mod:`meshplane.testing.routing` — a model of Envoy's HTTP route matching, which says
  which clusters a request would be split over by a RouteConfiguration.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from meshplane import app, client, settings
from meshplane.testing import routing
from meshplane.testing.ads import FakeAdsClient, names_of
from meshplane.testing.delta import FakeDeltaClient

__all__ = [
    "Applied",
    "ControlPlane",
    "ControlPlaneError",
    "FakeAdsClient",
    "FakeDeltaClient",
    "names_of",
    "routing",
]

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


class ControlPlaneError(Exception):
    """The control plane refused a request made through this helper."""


class Applied(list[str]):
    """The result lines of :meth:`ControlPlane.apply` (a list), with their ``warnings``."""

    def __init__(self, lines: list[str], warnings: list[str]) -> None:
        """The lines in order; ``warnings`` in the order ``meshplane apply`` prints them."""
        super().__init__(lines)
        self.warnings = warnings


class ControlPlane:
    """A running control plane for tests: ``with ControlPlane(tmp_path) as plane: …``."""

    def __init__(
        self, data_dir: Path, *, mounts: Sequence[app.Mount] = (), **overrides: Any
    ) -> None:
        """Keep the store in ``data_dir``; ``overrides`` are fields of ``settings.Settings``.

        ``mounts`` add routes to the API (``Console(lookup).mount`` serves the web console).
        """
        self._mounts = tuple(mounts)
        self._settings = settings.load(
            environ={}, data_dir=data_dir, api_port=0, xds_port=0, **overrides
        )
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self.plane: app.ControlPlane | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        """Start the control plane and wait until it serves."""
        self._thread = threading.Thread(target=self._run, name="meshplane-testing", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=60) or self.plane is None:
            raise ControlPlaneError(f"the control plane did not start: {self._failure!r}")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Stop the control plane and wait for its thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=60)
            if self._thread.is_alive():
                raise ControlPlaneError("the control plane did not stop within 60 s")

    def _run(self) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            async with app.running(app.build(self._settings), self._mounts) as plane:
                self.plane = plane
                self._ready.set()
                await self._stop.wait()

        try:
            asyncio.run(serve())
        except BaseException as failure:  # reported by __enter__, which is waiting
            self._failure = failure
            self._ready.set()

    # -- what tests use --------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The App Mesh API's URL, for ``--endpoint-url`` and ``endpoint_url=``."""
        assert self.plane is not None, "use ControlPlane as a context manager"
        return f"http://{self._settings.host}:{self.plane.api_port}"

    @property
    def xds_port(self) -> int:
        """The port Envoy sidecars connect to."""
        assert self.plane is not None, "use ControlPlane as a context manager"
        return self.plane.xds_port

    def proxy_credential(self, node_id: str, replica: str = "") -> str:
        """The token an Envoy of ``node_id`` (and ``replica``) must show on its ADS stream.

        Put it in the bootstrap with ``meshplane.envoy.bootstrap(..., credential=token)``,
        or pass it to :class:`FakeAdsClient` as ``credential``.
        """
        return self.client().issue_proxy_credential(node_id, replica).token

    @property
    def credentials_file(self) -> Path:
        """The administrator's shared-credentials file (profile ``meshplane``).

        Point ``AWS_SHARED_CREDENTIALS_FILE`` at it (with ``AWS_PROFILE=meshplane``) to
        run the ``aws`` CLI or a ``meshplane`` command against this control plane.
        """
        return self._settings.data_dir / "credentials"

    def signer(self) -> client.Signer | None:
        """The administrator's SigV4 signer (None when started with ``auth="none"``)."""
        assert self.plane is not None, "use ControlPlane as a context manager"
        if self.plane.principals is None:
            return None
        return client.Signer.from_file(self.credentials_file, self._settings.region)

    def appmesh(self, **kwargs: Any) -> Any:
        """A boto3 ``appmesh`` client bound to this control plane, signed as its administrator.

        ``kwargs`` go to ``boto3.client`` (pass other keys to test a policy).
        """
        signer = self.signer()
        if signer is not None and "aws_access_key_id" not in kwargs:
            kwargs.update(
                aws_access_key_id=signer.credentials.access_key,
                aws_secret_access_key=signer.credentials.secret_key,
            )
        return client.appmesh(self.endpoint, self._settings.region, **kwargs)

    def wait_for_state(self, key: str, state: str, timeout: float = 30) -> dict[str, Any]:
        """The read model's view of proxy ``key`` once it is in ``state`` (``SYNCED``, …)."""
        assert self.plane is not None, "use ControlPlane as a context manager"
        assert self._loop is not None
        waiting = self.plane.views.wait_for_state(key, state, timeout)
        return asyncio.run_coroutine_threadsafe(waiting, self._loop).result()

    def client(self) -> client.MeshplaneClient:
        """A :class:`meshplane.client.MeshplaneClient` bound to this control plane, signed."""
        return client.MeshplaneClient(
            client.Transport(self.endpoint, timeout=60, signer=self.signer())
        )

    def apply(self, path: Path, namespace: str | None = None) -> Applied:
        """``meshplane apply -f path``: kubectl-style result lines; ControlPlaneError if refused.

        The lines' ``.warnings`` are the warnings ``meshplane apply`` prints (untranslated
        fields, objects that are not Active yet, ACM served by the built-in CA, …), so a
        test can assert there are none.
        """
        files = (
            sorted(p for p in path.iterdir() if p.suffix in MANIFEST_SUFFIXES)
            if path.is_dir()
            else [path]
        )
        sources = [client.Source(str(f), f.read_text(encoding="utf-8")) for f in files]
        try:
            results = self.client().apply(sources, namespace)["results"]
        except client.ControlPlaneError as refused:
            raise ControlPlaneError(json.dumps(refused.body)) from refused
        return Applied(
            [str(result["line"]) for result in results],
            [str(w) for result in results for w in result["warnings"]],
        )
