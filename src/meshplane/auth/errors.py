"""The rejections of an unauthenticated or unauthorised request, as AWS names them.

::

    AppMeshError (meshplane.model.errors)
    └── AuthError                             403 (abstract)
        ├── MissingAuthenticationTokenException   no SigV4 Authorization header
        ├── UnrecognizedClientException           the access key id is not known
        ├── InvalidSignatureException             bad signature, tampered body, skewed date
        └── AccessDeniedException                 authenticated, but no policy allows it

These are not App Mesh's modelled errors (App Mesh never saw an unsigned request: AWS's
front door refused it with these codes first), so they live here and not in
:mod:`meshplane.model.errors`, whose leaves are exactly the model's. They subclass
``AppMeshError`` so the API renders them the same way (``x-amzn-ErrorType``, ``message``).
"""

from __future__ import annotations

from meshplane.model import errors


class AuthError(errors.AppMeshError):
    """A request refused before it reached an operation; nothing was read or written."""

    http_status = 403


class MissingAuthenticationTokenException(AuthError):
    """The request carries no SigV4 ``Authorization`` header."""

    code = "MissingAuthenticationTokenException"


class UnrecognizedClientException(AuthError):
    """The access key id is not one this control plane issued."""

    code = "UnrecognizedClientException"


class InvalidSignatureException(AuthError):
    """The signature does not match the request, or its date is too far from now."""

    code = "InvalidSignatureException"


class AccessDeniedException(AuthError):
    """The caller is known, but its policy does not allow the action on the resource."""

    code = "AccessDeniedException"
