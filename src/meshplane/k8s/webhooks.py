"""The admission webhook server: HTTPS on the appmesh-controller's paths.

``POST /mutate-appmesh-k8s-aws-v1beta2-<kind>`` and
``/validate-appmesh-k8s-aws-v1beta2-<kind>`` for the seven kinds, and
``/mutate-v1-pod`` for the injector; ``GET /healthz`` for probes. Decisions are
:mod:`meshplane.k8s.admitting`'s, read against the controller's latest
catalog. A body that is not an AdmissionReview is a 400; an unexpected failure
is a 500, which the API server treats by the configuration's failurePolicy.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Awaitable, Callable

from aiohttp import web

from meshplane.k8s import admitting, injecting, mirroring
from meshplane.manifests.catalog import Catalog

log = logging.getLogger(__name__)

POD_PATH = "/mutate-v1-pod"

Decide = Callable[[admitting.Request], injecting.Decision]


def path(verb: str, kind: str) -> str:
    """``/mutate-appmesh-k8s-aws-v1beta2-virtualnode`` and its ``validate`` twin."""
    return f"/{verb}-appmesh-k8s-aws-v1beta2-{kind.lower()}"


def _handler(decide: Decide) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        try:
            review = json.loads(await request.read())
            parsed = admitting.parse(review)
        except (ValueError, RecursionError) as error:
            return web.json_response({"error": str(error)}, status=400)
        decision = decide(parsed)
        return web.json_response(admitting.respond(review, parsed.uid, decision))

    return handle


async def _healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def build_app(view: Callable[[], Catalog], config: injecting.InjectorConfig) -> web.Application:
    """The webhook application; ``view`` returns the catalog each decision reads."""
    app = web.Application()
    for kind in mirroring.APPMESH_KINDS:

        def mutate(request: admitting.Request, kind: str = kind) -> injecting.Decision:
            return admitting.mutate(kind, request, view())

        def validate(request: admitting.Request, kind: str = kind) -> injecting.Decision:
            return admitting.validate(kind, request)

        app.router.add_post(path("mutate", kind), _handler(mutate))
        app.router.add_post(path("validate", kind), _handler(validate))

    def pod(request: admitting.Request) -> injecting.Decision:
        return admitting.mutate_pod(request, view(), config)

    app.router.add_post(POD_PATH, _handler(pod))
    app.router.add_get("/healthz", _healthz)
    return app


async def start(
    app: web.Application, host: str, port: int, context: ssl.SSLContext
) -> tuple[web.AppRunner, int]:
    """Listen with TLS; the runner (for cleanup) and the port actually bound."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=context, reuse_port=False)
    await site.start()
    bound = next((int(address[1]) for address in runner.addresses), port)
    return runner, bound
