"""HTTP I/O with NBP's Web API (api.nbp.pl): the shared HTTP layer with NBP's answers; no mapping.

NBP asks for no authentication. The format is asked for both ways NBP documents ("with an query parameter
?format or with a HTTP Accept header"), so neither a proxy that drops the query nor one that rewrites headers
turns the answer into XML.

What NBP's statuses mean here (the digest's section 5; the bodies are text/plain, not JSON):
- 404 ``404 NotFound - Not Found - Brak danych``: no table in the range asked for (a weekend, a holiday, a
  currency the table does not quote). Not an error: ``None``.
- 400 ``400 BadRequest - Błędny zakres dat / Invalid date range`` (start after end, a date in the future) and
  ``400 BadRequest - Przekroczony limit ...``: the request is wrong and will stay wrong: RequestRefused
  (a PermanentError) naming the request and NBP's words.
- 5xx, 408, timeouts and broken connections: retried by the HTTP layer, then NbpUnavailable (retryable).
- A 404 without "Brak danych" is not NBP's data answer (a wrong ``api_url``): a PermanentError.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
from tenacity import wait_random_exponential
from tenacity.wait import WaitBaseT

from connectors.http import HttpClient, RequestRefused, Unavailable
from hub.kernel.errors import PermanentError
from hub.platform.ratelimit import Throttle

from . import mapping

TITLE = "NBP"
NO_DATA = "Brak danych"  # NBP's "no data" in the 404's body and reason phrase
DEFAULT_RETRY_WAIT: WaitBaseT = wait_random_exponential(multiplier=0.5, max=8.0)
HEADERS = {"Accept": "application/json", "User-Agent": "hub (NBP exchange rates)"}


class NbpUnavailable(Unavailable):
    """5xx, timeouts and broken connections after the last attempt: the queue asks again later."""


def plain_text(response: httpx.Response, limit: int = 200) -> str:
    """An error answer's body on one line (NBP's are short text/plain sentences)."""
    try:
        text = response.text
    except (UnicodeDecodeError, LookupError):
        text = response.content.decode("utf-8", "replace")
    return " ".join(text.split())[:limit]


def rates_path(table: str, code: str, start: date, end: date) -> str:
    """The single-currency series path, in the lower case and with the trailing slash of NBP's own examples
    (``rates/a/gbp/2012-01-01/2012-01-31/``)."""
    return f"/exchangerates/rates/{table.lower()}/{code.lower()}/{start.isoformat()}/{end.isoformat()}/"


class NbpClient(HttpClient):
    """NBP's API below its address (``https://api.nbp.pl/api``); paths are ``/exchangerates/...``."""

    log_prefix = "nbp"
    title = TITLE
    retry_statuses = frozenset({408})
    auth_statuses = frozenset()  # NBP has no authentication: a 401/403 is a proxy's, counted as 4xx
    redirects_are_errors = True
    unavailable_class = NbpUnavailable

    def __init__(
        self,
        connector: str,
        base_url: str,
        *,
        throttle: Throttle,
        log: Any,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 15.0,
        connect_timeout: float = 5.0,
        attempts: int = 3,
        retry_wait: WaitBaseT | None = None,
        sleep: Any = None,
    ):
        extra: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        super().__init__(
            connector=connector, throttle=throttle, log=log, timeout=httpx.Timeout(timeout, connect=connect_timeout),
            attempts=attempts, wait=retry_wait if retry_wait is not None else DEFAULT_RETRY_WAIT,
            base_url=base_url.rstrip("/"), headers=HEADERS, transport=transport, **extra,
        )

    def answer_reason(self, answer: Any) -> str:
        text = plain_text(answer.response)
        return f"HTTP {answer.status}" + (f" ({text})" if text else "")

    def rates(self, table: str, code: str, start: date, end: date) -> Any | None:
        """The JSON of ``rates/{table}/{code}/{start}/{end}/`` (numbers as Decimal), or None when NBP published
        no rate of ``code`` in that range ("Brak danych")."""
        path = rates_path(table, code, start, end)
        response = self.send("GET", path, params={"format": "json"}, expected=(404,))
        status = response.status_code
        if 200 <= status < 300:
            try:
                return mapping.loads(response.content)
            except mapping.NbpFormatError as exc:
                self.log.warning("nbp.not_json", path=path, status=status, body=plain_text(response))
                raise mapping.NbpFormatError(f"{TITLE} GET {path}: {exc}") from exc
        text = plain_text(response)
        if status == 404 and (NO_DATA in text or NO_DATA in response.reason_phrase):
            return None
        if status == 404:
            raise PermanentError(f"{TITLE} GET {path}: HTTP 404 ({text or 'no body'}) is not NBP's 'Brak danych': "
                                 "check the connector's api_url (NBP's is https://api.nbp.pl/api)")
        if 300 <= status < 400:
            raise PermanentError(f"{TITLE} GET {path}: redirected to {response.headers.get('Location')!r}; "
                                 "check the connector's api_url")
        raise RequestRefused(f"{TITLE} GET {path}?format=json: HTTP {status}" + (f" ({text})" if text else ""),
                             status=status)
