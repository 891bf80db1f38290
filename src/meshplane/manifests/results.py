"""What reconciling one object came to: done, requeue after a delay, or a permanent error.

Inside a reconcile, a step that cannot finish raises, in the manner of kopf:

- :class:`TemporaryError` (``delay`` seconds) — the object waits for something that
  will change without the user: a dependency being reconciled, a member being
  deleted, a busy or throttled service. A driver retries it after ``delay``.
- :class:`PermanentError` — retrying the same object is useless: App Mesh refused
  its spec. A driver stops retrying until the object (or something it reads)
  changes.

:meth:`~meshplane.manifests.reconciling.Reconciler.reconcile` catches them and
returns a :class:`ReconcileResult`; the Kubernetes controller turns a requeue
into a delayed work-queue entry, the local driver (:mod:`converging`) into
another pass.
"""

from __future__ import annotations

import dataclasses
import enum

from meshplane.model import errors

DEPENDENCY_DELAY = 5.0
"""Seconds before an object waiting for a dependency (or a busy service) is retried."""
MEMBERS_DELAY = 60.0
"""Seconds between retries of a Mesh or VirtualGateway waiting for its members to go, as the
controller's members finalizers requeue (``appmesh-controller.md`` §1.6)."""

_TEMPORARY_API_ERRORS = (
    errors.ConflictException,
    errors.InternalServerErrorException,
    errors.LimitExceededException,
    errors.NotFoundException,
    errors.ResourceInUseException,
    errors.ServiceUnavailableException,
    errors.TooManyRequestsException,
)
"""App Mesh errors that can clear without the object changing: another object's twin
appears or goes, a quota frees up, the service recovers. The others (BadRequest,
Forbidden, TooManyTags) refuse the spec itself."""


class TemporaryError(Exception):
    """The object cannot be reconciled yet; retry after ``delay`` seconds."""

    def __init__(self, message: str, delay: float = DEPENDENCY_DELAY) -> None:
        """Keep the reason (shown in status and events) and the retry delay."""
        super().__init__(message)
        self.message = message
        self.delay = delay


class PermanentError(Exception):
    """The object cannot be reconciled as it is; retrying it unchanged is useless."""

    def __init__(self, message: str) -> None:
        """Keep the reason (shown in status and events)."""
        super().__init__(message)
        self.message = message


def of_api_error(error: errors.AppMeshError, message: str) -> TemporaryError | PermanentError:
    """The reconcile error an App Mesh error from the domain service amounts to."""
    if isinstance(error, _TEMPORARY_API_ERRORS):
        return TemporaryError(message)
    return PermanentError(message)


class Verdict(enum.Enum):
    """The three ways a reconcile ends."""

    DONE = "done"
    REQUEUE = "requeue"
    PERMANENT = "permanent"


@dataclasses.dataclass(frozen=True)
class ReconcileResult:
    """One object's reconcile outcome; ``reason`` says why it is not done."""

    verdict: Verdict
    reason: str = ""
    requeue_after: float | None = None
    """Seconds until the next attempt (requeues only)."""

    @classmethod
    def done(cls) -> ReconcileResult:
        """The object is reconciled (or, being deleted, is gone)."""
        return cls(Verdict.DONE)

    @classmethod
    def requeue(cls, after: float, reason: str) -> ReconcileResult:
        """Retry the object after ``after`` seconds."""
        return cls(Verdict.REQUEUE, reason, after)

    @classmethod
    def permanent(cls, reason: str) -> ReconcileResult:
        """Do not retry the object until it changes."""
        return cls(Verdict.PERMANENT, reason)

    @classmethod
    def of(cls, error: TemporaryError | PermanentError) -> ReconcileResult:
        """The result a reconcile error stands for."""
        if isinstance(error, TemporaryError):
            return cls.requeue(error.delay, error.message)
        return cls.permanent(error.message)

    def describe(self) -> str:
        """One phrase for messages: ``done``, ``requeue in 5s: …``, ``permanent error: …``."""
        if self.verdict is Verdict.DONE:
            return "done"
        if self.verdict is Verdict.REQUEUE:
            return f"requeue in {self.requeue_after:g}s: {self.reason}"
        return f"permanent error: {self.reason}"
