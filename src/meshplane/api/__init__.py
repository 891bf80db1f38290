"""The App Mesh REST API (restJson1) that boto3 and ``aws appmesh`` speak, over aiohttp.

Layer 3: an adapter. Routes, request parsing and response shapes are derived from
botocore's service model; every operation is dispatched to
:mod:`meshplane.service`, and errors from any layer are rendered here with their
HTTP status, the ``x-amzn-ErrorType`` header and a ``message``. It holds no App
Mesh rule of its own. Only this package (and the console) imports aiohttp's server.
"""
