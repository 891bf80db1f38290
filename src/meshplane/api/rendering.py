"""How errors look on the wire: status, ``x-amzn-ErrorType``, ``x-amzn-RequestId``, message.

botocore reads the error code from the header first, then from the body; both
are sent so any client (boto3, the aws CLI, curl users) sees the App Mesh type.
"""

from __future__ import annotations

import json
import uuid

from aiohttp import web

from meshplane.model import errors

JSON = "application/json"


def error_response(error: errors.AppMeshError, request_id: str | None = None) -> web.Response:
    """The HTTP response for an App Mesh error."""
    return web.Response(
        status=error.http_status,
        text=json.dumps({"__type": error.code, "message": error.message}),
        content_type=JSON,
        headers={
            "x-amzn-ErrorType": error.code,
            "x-amzn-RequestId": request_id or str(uuid.uuid4()),
        },
    )
