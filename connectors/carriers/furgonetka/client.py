"""HTTP I/O with Furgonetka's REST API: OAuth2 token, throttle, retries, error classes; no mapping.

Auth (Furgonetka's own WordPress plugin 1.9.7, admin/class-furgonetka-admin.php: grant_code_access,
refresh_token, send_rest_api_request): ``POST /oauth/token``, form-encoded, the OAuth application's
client_id:client_secret as HTTP Basic; the answer holds access_token, refresh_token and expires_in; an
error answer has a ``message``. API calls carry ``Authorization: Bearer`` and
``Accept: application/vnd.furgonetka.v1+json``. The grant we start with is ``password`` with
``scope=api`` (carriers.md "Brokers (REST)", Kwarcek's OAuthClient::getTokenByPassword) (u).

The token lives in this object and is renewed in ONE place, ``access_token()``: ``token_margin`` seconds
before it expires, with the refresh token (the plugin's grant), falling back to the password grant when
the refresh token was rotated away by another process or refused. A 401 on an API call drops the token
and the call is sent once more with a new one.

Writes: ``POST /packages`` is sent once (``retry=False``): a lost answer may mean the draft exists, so the
caller looks it up by our reference before sending it again. The commands are PUTs to a UUID we choose,
idempotent by design, so the shared layer repeats them after a 5xx or a timeout.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity.wait import WaitBaseT

from connectors.http import Answer, HttpClient, RequestRefused, Unavailable
from hub.kernel.errors import LoginNeeded, PermanentError, RetryableError
from hub.platform.config import Secret
from hub.platform.ratelimit import Throttle

from .mapping import command_errors, to_json

MEDIA_TYPE = "application/vnd.furgonetka.v1+json"
TOKEN_PATH = "/oauth/token"
COMMAND_NOT_EXISTS = "commandNotExists"  # commerce-link Furgonetka.isCommandNotExists: a 400 naming it


class FurgonetkaRefused(RequestRefused):
    """A 4xx Furgonetka will answer again the same way; the message carries its reasons."""


class FurgonetkaUnavailable(Unavailable):
    """5xx, timeouts and broken connections after the last attempt."""


@dataclass
class _Token:
    access: str
    refresh: str | None
    expires_at: float  # on ``clock``


def error_text(response: httpx.Response) -> str:
    """Furgonetka's reasons from an error body ({errors: [{path, message}]} or {message}), else its start."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text[:200].strip()
    reasons = command_errors(body)
    if reasons:
        return "; ".join(reasons)
    if isinstance(body, Mapping) and body.get("error"):
        return str(body.get("error_description") or body["error"])
    return str(body)[:200]


class FurgonetkaClient(HttpClient):
    """Every call to one Furgonetka account; paths are below the API host."""

    log_prefix = "furgonetka"
    title = "Furgonetka"
    retry_statuses = frozenset({408})
    auth_statuses = frozenset({401, 403})
    unavailable_class = FurgonetkaUnavailable

    def __init__(
        self,
        connector: str,
        base_url: str,
        *,
        client_id: str,
        client_secret: Secret,
        username: str,
        password: Secret,
        throttle: Throttle,
        log: Any,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        attempts: int = 3,
        retry_wait: WaitBaseT | None = None,
        token_margin: float = 300.0,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__(
            connector=connector, throttle=throttle, log=log, timeout=httpx.Timeout(timeout, connect=connect_timeout),
            attempts=attempts, wait=retry_wait, retry_after_default=60.0, base_url=base_url.rstrip("/"),
            headers={"Accept": MEDIA_TYPE, "User-Agent": "hub-furgonetka/1"}, transport=transport,
        )
        self._basic = "Basic " + base64.b64encode(f"{client_id}:{client_secret.get()}".encode()).decode()
        self._username = username
        self._password = password
        self.token_margin = token_margin
        self._clock = clock
        self._token: _Token | None = None
        self._token_lock = threading.Lock()

    # --- the token: renewed here and nowhere else ----------------------------------------

    def access_token(self) -> str:
        with self._token_lock:
            token = self._token
            if token is not None and token.expires_at - self._clock() > self.token_margin:
                return token.access
            self._token = self._renew(token)
            return self._token.access

    def _renew(self, token: _Token | None) -> _Token:
        if token is not None and token.refresh:
            try:
                return self._grant({"grant_type": "refresh_token", "refresh_token": token.refresh})
            except (RequestRefused, LoginNeeded) as exc:
                # rotated away by another process, or expired: the password grant still works
                self.log.info("furgonetka.refresh_refused", error=str(exc))
        return self._grant({"grant_type": "password", "scope": "api", "username": self._username,
                            "password": self._password.get()})

    def _grant(self, form: dict[str, str]) -> _Token:
        grant = form["grant_type"]
        response = self.send("POST", TOKEN_PATH, data=form, headers={"Authorization": self._basic},
                             retry=True, expected=(400, 401))
        if response.status_code in (400, 401):
            reason = error_text(response)
            if grant == "refresh_token":
                raise FurgonetkaRefused(f"Furgonetka POST {TOKEN_PATH}: refresh refused: {reason}",
                                        status=response.status_code)
            raise LoginNeeded(f"Furgonetka refused the login (HTTP {response.status_code}: {reason}): check "
                              "client_id, client_secret, username and password of the connector")
        body = self._json(response, "POST", TOKEN_PATH)
        access = body.get("access_token") if isinstance(body, Mapping) else None
        expires_in = body.get("expires_in") if isinstance(body, Mapping) else None
        if not access or not isinstance(expires_in, int | float):
            raise RetryableError(f"Furgonetka POST {TOKEN_PATH}: the answer has no access_token or expires_in")
        self.log.info("furgonetka.token", grant=grant, expires_in=expires_in)
        return _Token(str(access), body.get("refresh_token") or None, self._clock() + float(expires_in))

    def _drop_token(self, access: str) -> None:
        with self._token_lock:
            if self._token is not None and self._token.access == access:
                self._token.expires_at = 0.0  # renewed (refresh first) by the next access_token()

    # --- calls ----------------------------------------------------------------------------

    def call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None,
             retry: bool | None = None, expected: tuple[int, ...] = ()) -> httpx.Response:
        """One API call with the Bearer token; a 401 renews the token and sends once more. Returns any
        answer in ``expected`` or 2xx; raises for the others."""
        headers = {"Content-Type": MEDIA_TYPE} if body is not None else {}
        content = to_json(body) if body is not None else None
        for first in (True, False):
            token = self.access_token()
            response = self.send(method, path, params=params, content=content, retry=retry,
                                 headers={**headers, "Authorization": f"Bearer {token}"}, expected=(401, *expected))
            if response.status_code == 401 and first:
                self._drop_token(token)
                continue
            break
        status = response.status_code
        if status < 300 or status in expected:
            return response
        if status == 401:
            raise LoginNeeded(f"Furgonetka {method} {path}: the new access token was refused too "
                              f"({error_text(response)}): check the OAuth application and the account")
        if status < 400:
            raise PermanentError(f"Furgonetka {method} {path}: redirected (HTTP {status}); check api_url")
        raise FurgonetkaRefused(f"Furgonetka {method} {path}: HTTP {status}: {error_text(response)}", status=status)

    def _json(self, response: httpx.Response, method: str, path: str) -> Any:
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RetryableError(f"Furgonetka {method} {path}: HTTP {response.status_code} without a JSON body "
                                 f"({response.text[:80].strip()!r})") from exc

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._json(self.call("GET", path, params=params), "GET", path)

    def account_services(self) -> Any:
        return self.get_json("/account/services")

    def create_package(self, body: Mapping[str, Any]) -> Any:
        """Once only: a lost answer may mean the draft exists (the caller looks it up by reference)."""
        return self._json(self.call("POST", "/packages", body=body, retry=False), "POST", "/packages")

    def packages(self, params: Mapping[str, Any]) -> Any:
        return self.get_json("/packages", params)

    def package(self, package_id: str) -> Any:
        return self.get_json(f"/packages/{package_id}")

    def tracking(self, package_id: str) -> Any:
        return self.get_json(f"/packages/{package_id}/tracking")

    def pickup_proposals(self, body: Mapping[str, Any]) -> Any:
        """A question, not a change: safe to repeat."""
        path = "/packages/pickup-date-proposals"
        return self._json(self.call("POST", path, body=body, retry=True), "POST", path)

    def put_command(self, kind: str, command: str, body: Mapping[str, Any]) -> Any:
        """PUT /{kind}/{uuid}: idempotent by design (our UUID names the command), so it is retried."""
        path = f"/{kind}/{command}"
        response = self.call("PUT", path, body=body)
        return self._json(response, "PUT", path) if response.content else None

    def get_command(self, kind: str, command: str) -> Any | None:
        """The command's report, or None when Furgonetka does not know the UUID (never sent, or lost
        before it arrived)."""
        path = f"/{kind}/{command}"
        response = self.call("GET", path, expected=(400, 404))
        if response.status_code in (400, 404):
            if COMMAND_NOT_EXISTS in response.text or response.status_code == 404:
                return None
            raise FurgonetkaRefused(f"Furgonetka GET {path}: HTTP {response.status_code}: {error_text(response)}",
                                    status=response.status_code)
        return self._json(response, "GET", path)

    def label(self, package_id: str, params: Mapping[str, str]) -> tuple[bytes, str] | None:
        """The label's bytes and content type; None while Furgonetka has none (204, as commerce-link's
        FurgonetkaLabelTest quotes the sandbox)."""
        response = self.call("GET", f"/packages/{package_id}/label", params=params)
        if response.status_code == 204 or not response.content:
            return None
        return response.content, response.headers.get("Content-Type", "")

    # --- the shared layer's hooks -----------------------------------------------------------

    def answer_reason(self, answer: Answer) -> str:
        return f"HTTP {answer.status}: {error_text(answer.response)}"

    def log_answer(self, answer: Answer) -> None:
        if answer.kind == "ok":
            self.log.debug("furgonetka.request", method=answer.method, path=answer.path, status=answer.status)
            return
        self.log.warning("furgonetka.error", method=answer.method, path=answer.path, status=answer.status,
                         elapsed_ms=round(answer.elapsed * 1000), error=error_text(answer.response))
