"""``/meshplane/v1/credentials``: principals and their policies, managed over the signed API.

``meshplane credentials create|list|delete`` call these; the authorization table makes
them the administrator's alone unless a policy grants ``meshplane:*Credentials``.
Secrets are shown once, in the answer that creates them; listing never shows one.
"""

from __future__ import annotations

from aiohttp import web

from meshplane.api import rendering
from meshplane.auth.principals import PrincipalError, Principals
from meshplane.model import errors

PREFIX = "/meshplane/v1/credentials"


def add_routes(app: web.Application, principals: Principals) -> None:
    """Register the credential routes; call before any catch-all route."""

    async def list_credentials(_: web.Request) -> web.Response:
        return web.json_response({"credentials": [p.summary() for p in principals.list()]})

    async def create(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            try:
                body = await request.json()
            except (ValueError, RecursionError) as exc:
                raise errors.BadRequestException(f"The body is not valid JSON: {exc}") from exc
            if not isinstance(body, dict) or "policy" not in body:
                raise errors.BadRequestException('The body must be {"policy": {...}}')
            try:
                created = principals.create(name, body["policy"])
            except PrincipalError as error:
                if "already exists" in str(error):
                    raise errors.ConflictException(str(error)) from error
                raise errors.BadRequestException(str(error)) from error
        except errors.AppMeshError as error:
            return rendering.error_response(error)
        answer = {**created.summary(), "secretAccessKey": created.secret_access_key}
        return web.json_response({**answer, "profile": created.profile()})

    async def delete(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            try:
                deleted = principals.delete(name)
            except PrincipalError as error:
                raise errors.BadRequestException(str(error)) from error
            except KeyError as error:
                raise errors.NotFoundException(f"No principal named {name!r}") from error
        except errors.AppMeshError as error:
            return rendering.error_response(error)
        return web.json_response(deleted.summary())

    app.router.add_get(PREFIX, list_credentials)
    app.router.add_post(f"{PREFIX}/{{name}}", create)
    app.router.add_delete(f"{PREFIX}/{{name}}", delete)
