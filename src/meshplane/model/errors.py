"""The error tree; its leaves are exactly the App Mesh service model's exceptions.

::

    AppMeshError                      (abstract: code, http_status, message)
    ├── BadRequestException           400  invalid input; names the field and the rule
    ├── ConflictException             409  name taken, or clientToken reused with another body
    ├── ForbiddenException            403
    ├── InternalServerErrorException  500
    ├── LimitExceededException        400  a service quota would be exceeded
    ├── NotFoundException             404  the resource, its parent or a reference is missing
    ├── ResourceInUseException        409  delete refused: others depend on this resource
    ├── ServiceUnavailableException   503
    ├── TooManyRequestsException      429
    └── TooManyTagsException          400  more than 50 tags on one resource

Lower layers raise these; :mod:`meshplane.api` renders them with the
``x-amzn-ErrorType`` header; the CLI prints them as one line. A conformance test
checks every leaf against botocore's model.
"""

from __future__ import annotations

from typing import ClassVar


class AppMeshError(Exception):
    """Base of every error meshplane reports through the App Mesh API."""

    code: ClassVar[str] = "InternalServerErrorException"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        """Keep the message: it is shown to users verbatim."""
        super().__init__(message)
        self.message = message


class BadRequestException(AppMeshError):
    """The request is malformed or breaks a rule of the API."""

    code = "BadRequestException"
    http_status = 400


class ConflictException(AppMeshError):
    """The name already exists, or a clientToken was reused with a different request."""

    code = "ConflictException"
    http_status = 409


class ForbiddenException(AppMeshError):
    """The caller may not do this."""

    code = "ForbiddenException"
    http_status = 403


class InternalServerErrorException(AppMeshError):
    """An unexpected failure; the request may be retried."""

    code = "InternalServerErrorException"
    http_status = 500


class LimitExceededException(AppMeshError):
    """A service quota would be exceeded."""

    code = "LimitExceededException"
    http_status = 400


class NotFoundException(AppMeshError):
    """The named resource, its parent, or a resource it references does not exist."""

    code = "NotFoundException"
    http_status = 404


class ResourceInUseException(AppMeshError):
    """The resource cannot be deleted while other resources depend on it."""

    code = "ResourceInUseException"
    http_status = 409


class ServiceUnavailableException(AppMeshError):
    """The service cannot answer now; retry later."""

    code = "ServiceUnavailableException"
    http_status = 503


class TooManyRequestsException(AppMeshError):
    """The request rate is too high."""

    code = "TooManyRequestsException"
    http_status = 429


class TooManyTagsException(AppMeshError):
    """A resource would carry more than 50 tags; nothing was applied."""

    code = "TooManyTagsException"
    http_status = 400


ALL: tuple[type[AppMeshError], ...] = (
    BadRequestException,
    ConflictException,
    ForbiddenException,
    InternalServerErrorException,
    LimitExceededException,
    NotFoundException,
    ResourceInUseException,
    ServiceUnavailableException,
    TooManyRequestsException,
    TooManyTagsException,
)
