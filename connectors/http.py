"""The one HTTP layer every connector client uses: httpx with the throttle, retries, Retry-After, error classes,
metrics and logs. A vendor's client subclasses ``HttpClient`` and keeps only what is the vendor's own: base URL,
auth, how its error bodies read, what its statuses mean, its messages and log lines, pagination.

One ``send`` is one logical request:

* every attempt first takes a token from the connector's throttle (``Throttle.wait``);
* a timeout, a broken connection, a 5xx or a status in ``retry_statuses`` is worth another attempt: the request
  is sent again after ``wait`` (tenacity), up to ``attempts`` times; then ``give_up`` raises an ``Unavailable``
  (a RetryableError: the queue tries the job again later, and the request may or may not have been applied);
* a 429 blocks the whole throttle for the vendor's Retry-After (``retry_after``; ``retry_after_default`` when it
  has none) and raises ``RateLimited`` at once: calling on during a block only lengthens it;
* a request that is not idempotent (POST, PATCH) gets ONE attempt unless its caller says a repeat is harmless
  (``retry=True``, or a vendor whose ``repeat_writes`` is true): a lost answer may mean the vendor did it, so the
  caller looks it up before sending again, never resends blindly;
* every other answer goes back to the vendor's client, which decides what its statuses mean (``expected`` lists
  the statuses its caller handles, which are then not counted as errors);
* every attempt is counted by ``hub.platform.metrics.connector_request`` (outcome: ``2xx``..``5xx``, ``timeout``,
  ``network``; error: ``429``, ``5xx``, ``timeout``, ``network``, ``auth``, ``redirect``, ``4xx``) and logged:
  ``<log_prefix>.timeout`` and ``<log_prefix>.network_error`` here, answers through the ``log_answer`` hook.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NoReturn

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential
from tenacity import sleep as tenacity_sleep
from tenacity.wait import WaitBaseT

from hub.kernel.errors import PermanentError, RetryableError
from hub.platform.metrics import connector_request
from hub.platform.ratelimit import Throttle

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})  # RFC 9110 9.2.2
DEFAULT_WAIT: WaitBaseT = wait_random_exponential(multiplier=0.5, max=8.0)  # full jitter

Params = Mapping[str, Any] | Sequence[tuple[str, Any]]


class Unavailable(RetryableError):
    """Timeouts, broken connections, 5xx after the last attempt: the request may or may not have been applied.
    ``status`` and ``code`` (the vendor's error code) are set when the vendor answered."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class RateLimited(RetryableError):
    """A 429: the connector's throttle is blocked for ``retry_after`` seconds; nobody sends until then."""


class RequestRefused(PermanentError):
    """A 4xx the vendor will answer again the same way; ``code`` is the vendor's error code."""

    def __init__(self, message: str, *, status: int, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class AttemptFailed(Exception):
    """One attempt worth another (a timeout, a broken connection, a 5xx or a retry status); after the last
    one it goes to ``give_up``. ``str()`` is the vendor's description of what happened."""

    def __init__(self, message: str, *, method: str, path: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.method = method
        self.path = path
        self.status = status
        self.code = code


@dataclass(frozen=True)
class Answer:
    """One attempt's response, as the hooks see it."""

    method: str
    path: str  # the URL's path, never the query (it may carry codes)
    response: httpx.Response
    elapsed: float  # seconds from sending to the answer's headers
    # "ok": goes back, not an error; "error": goes back, counted as an error; "retry": another attempt (or
    # give_up); "rate_limited": a 429, the throttle is blocked
    kind: Literal["ok", "error", "retry", "rate_limited"]
    error: str | None  # the metrics' error label (None for "ok")
    block_seconds: float | None = None  # "rate_limited": how long the throttle is blocked

    @property
    def status(self) -> int:
        return self.response.status_code


def retry_after_seconds(value: str | None, *, now: datetime | None = None, dates: bool = True) -> float | None:
    """Retry-After as seconds (never negative): delta-seconds or, unless ``dates`` is false, an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    if not dates:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class HttpClient:
    """Every request of one connector goes through ``send``. Subclasses set the class attributes below and
    override the hooks (``retry_after``, ``error_code``, the ``*_reason`` texts, ``rate_limited``,
    ``give_up``, ``log_answer``) where their vendor differs."""

    log_prefix = "http"  # log events are "<log_prefix>.timeout", "<log_prefix>.network_error", ...
    title = "HTTP"  # names the vendor in messages
    retry_statuses: frozenset[int] = frozenset()  # answers retried like a 5xx (e.g. 408)
    auth_statuses: frozenset[int] = frozenset({401, 403})  # counted as "auth" errors
    redirects_are_errors = True  # a 3xx is counted as a "redirect" error (redirects are never followed)
    repeat_writes = False  # retry POST/PATCH when the caller does not say (only for vendors that dedupe them)
    unavailable_class: type[Unavailable] = Unavailable

    def __init__(
        self,
        *,
        connector: str,
        throttle: Throttle,
        log: Any,
        timeout: float | httpx.Timeout = 30.0,
        attempts: int = 3,
        wait: WaitBaseT | None = None,
        sleep: Callable[[float], None] = tenacity_sleep,
        retry_after_default: float = 60.0,
        base_url: str = "",
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        self.connector = connector
        self.throttle = throttle
        self.log = log
        self.attempts = attempts
        self.wait = wait if wait is not None else DEFAULT_WAIT
        self.sleep = sleep
        self.retry_after_default = retry_after_default
        self._client = httpx.Client(
            base_url=base_url, auth=auth, headers=headers, transport=transport, timeout=timeout,
            follow_redirects=False,  # a redirected POST would silently turn into a GET
        )

    def close(self) -> None:
        self._client.close()

    def send(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        data: Mapping[str, str] | None = None,
        json: Any = None,
        expected: Collection[int] = (),
        attempts: int | None = None,
        retry: bool | None = None,
    ) -> httpx.Response:
        """The response for any answer but a 429 (RateLimited) and the retried ones (Unavailable after the last
        attempt). ``attempts`` overrides the configured number; ``retry=False`` sends once whatever happens,
        ``retry=True`` retries even a POST; by default only idempotent methods are retried (``repeat_writes``)."""
        if retry is None:
            retry = self.repeat_writes or method.upper() in IDEMPOTENT_METHODS
        attempts = (attempts or self.attempts) if retry else 1
        retrying = Retrying(
            stop=stop_after_attempt(attempts), wait=self.wait, retry=retry_if_exception_type(AttemptFailed),
            sleep=self.sleep, reraise=True,
        )
        request = {"params": params, "headers": headers, "content": content, "data": data, "json": json}
        try:
            for attempt in retrying:
                with attempt:
                    return self._once(method, url, request, expected)
        except AttemptFailed as failure:
            self.give_up(failure, attempts)
        raise AssertionError("tenacity ended without a result")  # pragma: no cover

    def _once(self, method: str, url: str, request: dict[str, Any], expected: Collection[int]) -> httpx.Response:
        path = httpx.URL(url).path  # never the query: it may carry codes
        self.throttle.wait()
        started = time.monotonic()
        try:
            response = self._client.request(method, url, **request)
        except httpx.TimeoutException as exc:
            connector_request(self.connector, "timeout", "timeout")
            self.log.warning(f"{self.log_prefix}.timeout", method=method, path=path, error=type(exc).__name__)
            raise AttemptFailed(self.timeout_reason(method, path, exc), method=method, path=path) from exc
        except httpx.TransportError as exc:
            connector_request(self.connector, "network", "network")
            self.log.warning(f"{self.log_prefix}.network_error", method=method, path=path, error=str(exc))
            raise AttemptFailed(self.network_reason(method, path, exc), method=method, path=path) from exc
        elapsed = time.monotonic() - started
        status = response.status_code
        outcome = f"{status // 100}xx"
        if status == 429:
            seconds = self.retry_after(response)
            seconds = self.retry_after_default if seconds is None else seconds
            self.throttle.block(seconds)  # everyone on this bucket stops, not just this caller
            connector_request(self.connector, outcome, "429")
            answer = Answer(method, path, response, elapsed, "rate_limited", "429", seconds)
            self.log_answer(answer)
            raise self.rate_limited(answer)
        if status >= 500 or status in self.retry_statuses:
            error = "5xx" if status >= 500 else "timeout" if status == 408 else "4xx"
            connector_request(self.connector, outcome, error)
            answer = Answer(method, path, response, elapsed, "retry", error)
            self.log_answer(answer)
            raise AttemptFailed(self.answer_reason(answer), method=method, path=path, status=status,
                                code=self.error_code(response))
        label = self._error_label(status, expected)
        self.log_answer(Answer(method, path, response, elapsed, "ok" if label is None else "error", label))
        connector_request(self.connector, outcome, label)
        return response

    def _error_label(self, status: int, expected: Collection[int]) -> str | None:
        if status < 300 or status in expected:
            return None
        if status < 400:
            return "redirect" if self.redirects_are_errors else None
        return "auth" if status in self.auth_statuses else "4xx"

    # --- hooks: what differs between vendors -----------------------------------------------

    def retry_after(self, response: httpx.Response) -> float | None:
        """A 429's block in seconds; None: ``retry_after_default``."""
        return retry_after_seconds(response.headers.get("Retry-After"))

    def error_code(self, response: httpx.Response) -> str | None:
        """The vendor's error code in an error body, if it has one."""
        return None

    def timeout_reason(self, method: str, path: str, exc: httpx.TimeoutException) -> str:
        return f"timed out ({type(exc).__name__})"

    def network_reason(self, method: str, path: str, exc: httpx.TransportError) -> str:
        return f"network error: {exc}"

    def answer_reason(self, answer: Answer) -> str:
        """What a retried or refused answer said."""
        return f"HTTP {answer.status}"

    def rate_limited(self, answer: Answer) -> RetryableError:
        """The error for a 429 (the throttle is already blocked for ``answer.block_seconds``)."""
        return RateLimited(f"{self.title} {answer.method} {answer.path}: {self.answer_reason(answer)}",
                           retry_after=answer.block_seconds)

    def give_up(self, failure: AttemptFailed, attempts: int) -> NoReturn:
        """Raise the error for a request whose last attempt failed too."""
        if attempts > 1:
            tries = f"after {attempts} attempts"
        elif failure.method in ("GET", "HEAD"):
            tries = "one attempt"
        else:
            tries = "not retried: the request may have landed"
        raise self.unavailable_class(f"{self.title} {failure.method} {failure.path}: {failure} ({tries})",
                                     status=failure.status, code=failure.code) from failure

    def log_answer(self, answer: Answer) -> None:
        """Log one answer (timeouts and network errors are logged by ``send`` itself)."""
        fields = {"method": answer.method, "path": answer.path, "status": answer.status,
                  "elapsed_ms": round(answer.elapsed * 1000)}
        if answer.kind == "ok":
            self.log.debug(f"{self.log_prefix}.request", **fields)
        elif answer.kind == "rate_limited":
            self.log.warning(f"{self.log_prefix}.rate_limited", block_seconds=answer.block_seconds, **fields)
        else:
            self.log.warning(f"{self.log_prefix}.http_error", error=answer.error, **fields)
