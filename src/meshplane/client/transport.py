"""One HTTP exchange with the control plane, optionally SigV4-signed: the one HTTP caller.

Every typed call of :mod:`meshplane.client.meshplane` ends in :meth:`Transport.send`, so
authentication is decided here, once. Today meshplane accepts every request; the coming
authentication work makes the server check SigV4 signatures for service ``appmesh``, as
App Mesh did. A client built with a :class:`Signer` already signs every request with
botocore's ``SigV4Auth``, the same code boto3 and the ``aws`` CLI sign with.

The standard library's ``urllib`` carries the bytes: the CLI must start fast and the
runtime calls through a thread (see :class:`~meshplane.client.meshplane.AsyncMeshplaneClient`),
so nothing here needs an event loop.
"""

from __future__ import annotations

import dataclasses
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from meshplane.client.errors import UnreachableError

SERVICE = "appmesh"
"""The SigV4 service name: App Mesh's, so the same credentials and policies apply."""


@dataclasses.dataclass(frozen=True)
class Signer:
    """Signs requests with SigV4 for ``service`` in ``region`` with botocore credentials."""

    credentials: Any
    """A botocore ``Credentials`` (access key, secret key and an optional session token)."""
    region: str
    service: str = SERVICE

    @classmethod
    def from_environment(cls, region: str, profile: str | None = None) -> Signer | None:
        """Credentials resolved as boto3 resolves them; None if there are none.

        botocore's chain reads ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
        ``AWS_PROFILE`` (or ``profile``), ``AWS_SHARED_CREDENTIALS_FILE`` and
        ``AWS_CONFIG_FILE``, in boto3's order.
        """
        import botocore.session  # noqa: PLC0415 - botocore's import costs; only signing pays it

        session = botocore.session.Session(profile=profile)
        credentials = session.get_credentials()
        return None if credentials is None else cls(credentials, region)

    def sign(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]
    ) -> dict[str, str]:
        """``headers`` plus ``Authorization``, ``X-Amz-Date`` (and the session token, if any)."""
        from botocore.auth import SigV4Auth  # noqa: PLC0415 - see from_environment
        from botocore.awsrequest import AWSRequest  # noqa: PLC0415

        request = AWSRequest(method=method, url=url, data=body or b"", headers=dict(headers))
        SigV4Auth(self.credentials, self.service, self.region).add_auth(request)
        return dict(request.headers.items())


class Transport:
    """Sends requests to one base URL: timeouts, proxies and signing decided once."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        signer: Signer | None = None,
        trust_env: bool = True,
    ) -> None:
        """Call ``base_url``; ``trust_env=False`` ignores ``HTTP_PROXY`` and friends."""
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.signer = signer
        handlers: list[urllib.request.BaseHandler] = []
        if not trust_env:
            # The runtime sets HTTP_PROXY for its apps, never for its own calls.
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)

    def send(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
        """One request; the status and raw body of any answer, UnreachableError if none."""
        url = self.base_url + path
        headers = {"content-type": "application/json"}
        if self.signer is not None:
            headers = self.signer.sign(method, url, body, headers)
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with self._opener.open(request, timeout=timeout or self.timeout) as answer:
                return int(answer.status), answer.read()
        except urllib.error.HTTPError as error:
            with error:
                return int(error.code), error.read()
        except (urllib.error.URLError, OSError) as error:
            why = getattr(error, "reason", None) or error or type(error).__name__
            raise UnreachableError(f"{method} {url}: {why}") from error
