"""The principals every ``meshplane k8s`` replica checks signatures against: one Secret.

A SigV4-signed request or ADS stream (an aws-appmesh-envoy sidecar) reaches whichever
replica the Service picks, so every replica must know every principal. They live in the
Secret :data:`SECRET` of meshplane's namespace, key :data:`KEY` (the very text of
``principals.json``):

* at start (:func:`shared`) a replica adopts the Secret's set — its own
  ``principals.json`` and ``credentials`` are rewritten from it, so the admin profile in
  every data dir is the same — or, the first time, stores its own set there (a replica
  racing it to the create wins and is adopted);
* a change made through any replica's ``/meshplane/v1/credentials`` is a
  read-modify-write of the Secret guarded by its resourceVersion (:class:`SecretBackend`;
  a concurrent write makes it re-read and apply the change again), then of the file;
* every replica watches the Secret and reloads what another one stored, so a key
  created on one replica signs on all of them a watch event later, and a deleted one
  stops working on all of them.

Without access to Secrets the replica keeps its own principals and says so in the log.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
from lightkube import ApiError, AsyncClient, Client

from meshplane.auth import principals as auth_principals
from meshplane.auth.principals import Principal, PrincipalError, Principals
from meshplane.k8s import apiserver

log = logging.getLogger(__name__)

SECRET = "meshplane-principals"
KEY = "principals.json"
ATTEMPTS = 5
"""Read-modify-write rounds a change gets when other replicas keep writing meanwhile."""
RETRY_S = 2.0
"""Back-off after a failed watch (the API server restarting)."""


def _decoded(secret: Any) -> dict[str, Principal]:
    data = dict(secret).get("data") or {}
    if not isinstance(data.get(KEY), str):
        raise ValueError(f"Secret {SECRET} has no {KEY}")
    return auth_principals.load(base64.b64decode(data[KEY]).decode())


def _encoded(by_name: dict[str, Principal]) -> str:
    return base64.b64encode(auth_principals.dump(by_name.values()).encode()).decode()


def _body(namespace: str, by_name: dict[str, Principal]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET, "namespace": namespace},
        "type": "Opaque",
        "data": {KEY: _encoded(by_name)},
    }


class SecretBackend:
    """:class:`~meshplane.auth.principals.Backend` over the Secret (a blocking client).

    The API's credential handlers call :class:`Principals` on the event loop; a change is
    rare (an administrator's), so its two round trips block the loop briefly rather than
    making every caller of the synchronous principals API asynchronous.
    """

    def __init__(self, client: Client, namespace: str) -> None:
        """Read and write :data:`SECRET` in ``namespace`` with ``client``."""
        self._client = client
        self._namespace = namespace

    def update(self, change: auth_principals.Change) -> dict[str, Principal]:
        """Apply ``change`` to the Secret's set and replace it at the version read."""
        for _ in range(ATTEMPTS):
            try:
                secret = dict(self._client.get(apiserver.SECRET, SECRET, namespace=self._namespace))
                current = _decoded(secret)
                change(current)
                secret["data"] = {**(secret.get("data") or {}), KEY: _encoded(current)}
                # metadata.resourceVersion travels along: a write since our read is a 409.
                self._client.replace(apiserver.SECRET.from_dict(secret))
            except ApiError as error:
                if error.status.code == 409:
                    continue
                raise PrincipalError(
                    f"Secret {self._namespace}/{SECRET}: {error.status.message}"
                ) from error
            except (httpx2.HTTPError, OSError, ValueError) as error:
                raise PrincipalError(f"Secret {self._namespace}/{SECRET}: {error}") from error
            return current
        raise PrincipalError(
            f"Secret {self._namespace}/{SECRET} kept changing under {ATTEMPTS} attempts; retry"
        )


async def _adopt_or_store(client: AsyncClient, namespace: str, principals: Principals) -> str:
    """Take the Secret's set, or store ours when there is none yet; what happened."""
    try:
        found = await client.get(apiserver.SECRET, SECRET, namespace=namespace)
    except ApiError as error:
        if error.status.code != 404:
            raise
    else:
        principals.reload(_decoded(found))
        return f"adopted the principals of Secret {namespace}/{SECRET}"
    mine = {p.name: p for p in principals.list()}
    try:
        await client.create(apiserver.SECRET.from_dict(_body(namespace, mine)))
    except ApiError as error:
        if error.status.code != 409:
            raise
        found = await client.get(apiserver.SECRET, SECRET, namespace=namespace)
        principals.reload(_decoded(found))
        return f"adopted the principals of Secret {namespace}/{SECRET} (created meanwhile)"
    return f"stored this replica's principals as Secret {namespace}/{SECRET}"


async def _follow(client: AsyncClient, namespace: str, principals: Principals) -> None:
    """Reload whatever another replica stores, until cancelled."""
    selector: dict[str, Any] = {"metadata.name": SECRET}
    while True:
        try:
            async for event, secret in client.watch(
                apiserver.SECRET, namespace=namespace, fields=selector
            ):
                if event in {"ADDED", "MODIFIED"} and principals.reload(_decoded(secret)):
                    log.info("principals: reloaded from Secret %s/%s", namespace, SECRET)
        except ApiError as error:
            log.warning("principals: watch of Secret %s failed: %s", SECRET, error.status.message)
        except (httpx2.HTTPError, OSError, ValueError, PrincipalError) as error:
            log.warning("principals: watch of Secret %s failed: %s", SECRET, error)
        await asyncio.sleep(RETRY_S)


@contextlib.asynccontextmanager
async def shared(
    kubeconfig: Path | None, namespace: str, principals: Principals | None
) -> AsyncIterator[str]:
    """Share ``principals`` through the Secret while the block runs; what happened at start.

    ``None`` (``--auth none``) shares nothing.
    """
    if principals is None:
        yield "no principals (--auth none)"
        return
    client = apiserver.connect(kubeconfig)
    try:
        try:
            what = await _adopt_or_store(client, namespace, principals)
        except (ApiError, httpx2.HTTPError, OSError, ValueError, PrincipalError) as error:
            log.warning(
                "principals are this replica's own (Secret %s/%s: %s): a key created here "
                "signs only here",
                namespace,
                SECRET,
                error,
            )
            yield "kept this replica's own principals"
            return
        principals.backend = SecretBackend(apiserver.connect_sync(kubeconfig), namespace)
        follower = asyncio.create_task(_follow(client, namespace, principals), name="principals")
        try:
            yield what
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
            principals.backend = None
    finally:
        await client.close()
