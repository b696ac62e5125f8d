"""Errors the spine and connectors share.

Handlers tell the queue what to do with a failure by the exception they raise:
RetryableError (try again, optionally not before ``retry_after`` seconds) or
PermanentError (the job goes dead at once). Anything else is treated as
retryable until the job's attempts run out.
"""

from __future__ import annotations


class HubError(Exception):
    """Base for errors the CLI reports as one line with exit code 2."""


class ConfigError(HubError):
    """The configuration or a mappings file is invalid; each problem names file, key and value."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class NotMigratedError(HubError):
    """The database schema is not at the head revision."""


class NotFoundError(HubError):
    """An id given on the command line does not exist."""


class EnvironmentFailure(HubError):
    """Something the hub depends on failed (a database it cannot reach, a file it cannot read, a
    channel that is down): the CLI reports it as one line with exit code 1."""


class JobError(Exception):
    """Raised by job handlers to steer the queue."""


class RetryableError(JobError):
    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(JobError):
    pass


class RefundNotPossible(PermanentError):
    """The channel cannot return this payment (cash on delivery, bank transfer, a gateway that cannot
    refund through its API): the seller returns the money by hand, and the hub says so on the return."""


class OrderChangedOnChannel(JobError):
    """The order changed on the channel in a way that forbids what the hub was about to send (the buyer
    cancelled it): the hub reads the order again instead of writing over the change."""


class Deferred(RetryableError):
    """Not now: the connector's own request quota is spent for longer than a worker thread should sleep.
    The job runs again after ``retry_after`` without spending an attempt, and the thread serves other
    jobs meanwhile (a thread asleep on one vendor's quota held up every other connector's work)."""


class LoginNeeded(RetryableError):
    """The connector's credentials were revoked or expired for good: an operator must log in again.

    The job is held (not failed, no attempt spent) until the login succeeds.
    """

    def __init__(self, message: str, *, hold_seconds: float = 300.0):
        super().__init__(message, retry_after=hold_seconds)
