"""One HTTP exchange with the control plane, optionally SigV4-signed: the one HTTP caller.

Every typed call of :mod:`meshplane.client.meshplane` ends in :meth:`Transport.send`, so
authentication is decided here, once. The server checks SigV4 signatures for service
``appmesh``, as App Mesh did; a client built with a :class:`Signer` signs every request
as botocore's ``SigV4Auth`` does (:mod:`meshplane.client.sigv4`, checked against it), and
finds plain keys as botocore's chain does (:mod:`meshplane.client.statickeys`), asking
botocore itself for anything else — without importing botocore when it is not needed.

The standard library carries the bytes (a socket for plain ``http://``,
:mod:`meshplane.client.plainhttp`; ``urllib`` for the rest): the CLI must start fast and the
runtime calls through a thread (see :class:`~meshplane.client.meshplane.AsyncMeshplaneClient`),
so nothing here needs an event loop.
"""

from __future__ import annotations

import configparser
import datetime
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode

from meshplane.client import plainhttp, sigv4, statickeys
from meshplane.client.errors import ControlPlaneError, UnreachableError

SERVICE = "appmesh"
"""The SigV4 service name: App Mesh's, so the same credentials and policies apply."""
FALLBACK_PROFILE = "meshplane"
"""The administrator's profile in ``<data dir>/credentials``, written by ``meshplane serve``."""
EXPLICIT_CHAIN = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)
"""Environment variables by which a user chooses credentials; any of them wins over the
data dir's file."""


class Signer(NamedTuple):
    """Signs requests with SigV4 for ``service`` in ``region`` with botocore credentials.

    A named tuple (immutable, compared and printed by its fields, as the frozen dataclass it
    was): :mod:`dataclasses` imports :mod:`inspect`, a tenth of a CLI command's start-up.
    """

    credentials: Any
    """:class:`~meshplane.client.sigv4.Keys`, or a botocore ``Credentials`` (possibly
    refreshable) from botocore's chain: anything with ``get_frozen_credentials()``."""
    region: str
    service: str = SERVICE

    @classmethod
    def from_environment(
        cls,
        region: str,
        profile: str | None = None,
        fallback: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Signer | None:
        """Credentials resolved as boto3 resolves them, else ``fallback``'s; None if none.

        botocore's chain reads ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
        ``AWS_PROFILE`` (or ``profile``), ``AWS_SHARED_CREDENTIALS_FILE`` and
        ``AWS_CONFIG_FILE``, in boto3's order. ``fallback`` is a data dir's
        ``credentials`` file (profile ``meshplane``). When the user named no credentials
        (no ``profile``, none of :data:`EXPLICIT_CHAIN`) and the fallback exists, it is
        used first: a developer's own AWS keys in ``~/.aws`` are for AWS, and sending
        their key id to a local control plane would only earn a refusal.
        """
        env = os.environ if environ is None else environ
        chosen = profile is not None or any(env.get(name) for name in EXPLICIT_CHAIN)
        if not chosen and fallback is not None and fallback.exists():
            return cls.from_file(fallback, region)
        # botocore reads the process's environment, whatever `environ` says.
        keys = statickeys.find(os.environ) if profile is None else None
        if keys is not None:
            return cls(keys, region)
        import botocore.session  # noqa: PLC0415 - the slowest import: only other set-ups pay it

        session = botocore.session.Session(profile=profile)
        credentials = session.get_credentials()
        if credentials is None and fallback is not None and fallback.exists():
            return cls.from_file(fallback, region)
        return None if credentials is None else cls(credentials, region)

    @classmethod
    def from_file(cls, path: Path, region: str, profile: str = FALLBACK_PROFILE) -> Signer:
        """The keys of ``profile`` in a shared-credentials file (KeyError if it has none)."""
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(path, encoding="utf-8")
        section = parser[profile]
        key_id, secret = section["aws_access_key_id"], section["aws_secret_access_key"]
        return cls(sigv4.Keys(key_id, secret), region)

    def sign(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]
    ) -> dict[str, str]:
        """``headers`` plus ``Authorization``, ``X-Amz-Date`` (and the session token, if any)."""
        frozen = self.credentials.get_frozen_credentials()  # a refreshable key refreshes here
        keys = sigv4.Keys(frozen.access_key, frozen.secret_key, frozen.token)
        now = datetime.datetime.now(datetime.UTC)
        return sigv4.sign(keys, self.region, self.service, method, url, body or b"", headers, now)


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
        self.trust_env = trust_env
        self._plain = plainhttp.applies(self.base_url, trust_env)
        self._opener: Any = None

    def _urllib(self) -> Any:
        """The urllib opener, built on first use: only ``https://`` and proxied URLs need it."""
        if self._opener is None:
            import urllib.request  # noqa: PLC0415 - ~50 ms of imports a plain http:// call skips

            handlers: list[urllib.request.BaseHandler] = []
            if not self.trust_env:
                # The runtime sets HTTP_PROXY for its apps, never for its own calls.
                handlers.append(urllib.request.ProxyHandler({}))
            self._opener = urllib.request.build_opener(*handlers)
        return self._opener

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, str | None] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One JSON request to ``path``; the parsed answer, ControlPlaneError unless 2xx.

        :meth:`MeshplaneClient.call <meshplane.client.meshplane.MeshplaneClient.call>` is
        this; the CLI's fast path calls it directly, without the typed client's module.
        """
        data = json.dumps(body).encode() if body is not None else None
        kept = {k: v for k, v in (query or {}).items() if v is not None}
        full = path + ("?" + urlencode(kept) if kept else "")
        status, raw = self.send(method, full, data, timeout)
        text = raw.decode("utf-8", errors="replace")
        try:
            answer = json.loads(text) if text else None
        except ValueError:
            answer = text
        if not 200 <= status < 300:
            raise ControlPlaneError(method, full, status, answer)
        return answer

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
        try:
            if self._plain:
                return plainhttp.exchange(method, url, headers, body, timeout or self.timeout)
            return self._send_urllib(method, url, headers, body, timeout or self.timeout)
        except OSError as error:  # urllib's URLError is an OSError too
            why = getattr(error, "reason", None) or error or type(error).__name__
            raise UnreachableError(f"{method} {url}: {why}") from error

    def _send_urllib(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float
    ) -> tuple[int, bytes]:
        import urllib.error  # noqa: PLC0415 - see _urllib
        import urllib.request  # noqa: PLC0415

        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with self._urllib().open(request, timeout=timeout) as answer:
                return int(answer.status), answer.read()
        except urllib.error.HTTPError as error:
            with error:
                return int(error.code), error.read()


def open_transport(
    base_url: str,
    *,
    sign: bool = False,
    region: str = "us-west-2",
    profile: str | None = None,
    fallback_credentials: Path | None = None,
    **options: Any,
) -> Transport:
    """The transport of :func:`meshplane.client.connect` (see there): signed when ``sign``."""
    signer = Signer.from_environment(region, profile, fallback_credentials) if sign else None
    return Transport(base_url, signer=signer, **options)
