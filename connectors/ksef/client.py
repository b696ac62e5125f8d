"""HTTP I/O with KSeF API 2.0: authentication with a KSeF token, the Ministry's public keys, online sessions;
no mapping beyond reading KSeF's error bodies.

``KsefClient`` is the shared HTTP layer (``connectors.http``) with KSeF's rules:

- Authentication (uwierzytelnianie.md): ``POST /auth/challenge`` -> ``POST /auth/ksef-token`` (the token
  encrypted with the ``KsefTokenEncryption`` key) -> ``GET /auth/{referenceNumber}`` until its status leaves 100
  -> ``POST /auth/token/redeem`` (once per authentication: a second call is a 400) for an access and a refresh
  token. The access token lives minutes: it is kept in memory and renewed with ``POST /auth/token/refresh``
  shortly before its ``validUntil``; a refresh token past its own (7 days) means authenticating again. A 401
  on a call renews the access token and sends the call once more (a 401 is a call KSeF did not apply).
- The public keys (``GET /security/public-key-certificates``) are cached; a 400 with code 21470 (the key is
  unknown or withdrawn: an emergency rotation) makes the caller fetch them again and retry once.
- Reads are retried on 5xx/timeouts; a POST gets one attempt (the layer's rule): a lost answer to a send is
  settled by reading the session back (``find_sent``), never by sending blindly.
- Errors come as problem details (``X-Error-Format: problem-details`` is sent) or, from a KSeF that ignores the
  header, as the legacy ``ExceptionResponse``: both are read (``error_body``).
- A batch session's parts go to the pre-signed addresses ``POST /sessions/batch`` names (sesja-wsadowa.md §5):
  with exactly the method and headers it gives, never a bearer nor the API's own headers, and outside the
  connector's throttle (limity-api.md: part uploads are not under KSeF's limits; 50 parts must not wait on the
  60-a-minute bucket). A part is the same blob whenever it is uploaded, so its upload is retried on 5xx and
  timeouts like a read.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn
from urllib.parse import quote

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from tenacity import wait_random_exponential
from tenacity.wait import WaitBaseT

from connectors.http import Answer, HttpClient, Params, RequestRefused, Unavailable
from hub.kernel.clock import utcnow
from hub.kernel.errors import LoginNeeded, PermanentError, RetryableError
from hub.kernel.ports.invoicing import SystemUnavailable
from hub.platform.config import Secret
from hub.platform.ratelimit import LocalRateLimiter, Throttle

from . import crypto, mapping

TITLE = "KSeF"
DEFAULT_RETRY_WAIT: WaitBaseT = wait_random_exponential(multiplier=0.5, max=8.0)
KEYS_TTL = timedelta(hours=12)  # the list is re-read this often even without a 21470
UNKNOWN_KEY = 21470  # "Przesłany identyfikator klucza jest nieznany lub wskazuje na wycofany klucz."
# auth status codes that a new try of the same token will not change (uwierzytelnianie.md, open-api.json)
AUTH_REFUSALS = {
    415: "the token has no permission in the context of NIP {nip}",
    425: "the authentication was revoked",
    450: "KSeF refused the token",
    460: "KSeF refused the certificate",
    470: "KSeF refused the authentication",
    480: "KSeF blocked the authentication (a suspected security incident: contact the Ministry)",
}
AUTH_TRANSIENT = frozenset({500, 550})


@dataclass(frozen=True)
class KsefError:
    """What a KSeF error body says: its codes (``exceptionCode`` / ``errors[].code``), text and details."""

    codes: tuple[int, ...]
    description: str | None
    details: tuple[str, ...]


def _texts(values: Any) -> list[str]:
    return [str(v) for v in values or () if v is not None] if isinstance(values, list) else []


def error_body(response: httpx.Response) -> KsefError:
    """Problem details (``errors[]`` of a 400, ``title``/``detail``/``reasonCode`` otherwise), the legacy
    ``ExceptionResponse`` (``exception.exceptionDetailList[]``) or the legacy 429 (``status``); a proxy's page
    becomes a short text."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return KsefError((), response.text[:200].strip() or None, ())
    if not isinstance(body, Mapping):
        return KsefError((), str(body)[:200], ())
    codes: list[int] = []
    texts: list[str] = []
    details: list[str] = []
    items: Any = body.get("errors")
    if not isinstance(items, list):
        exception = body.get("exception")
        items = exception.get("exceptionDetailList") if isinstance(exception, Mapping) else None
    if isinstance(items, list):
        for item in items:
            if not isinstance(item, Mapping):
                continue
            code = item.get("code", item.get("exceptionCode"))
            if isinstance(code, int) and not isinstance(code, bool):
                codes.append(code)
            text = item.get("description", item.get("exceptionDescription"))
            if text:
                texts.append(str(text))
            details += _texts(item.get("details"))
    elif isinstance(body.get("status"), Mapping):  # the legacy 429
        texts.append(str(body["status"].get("description") or ""))
        details += _texts(body["status"].get("details"))
    if not texts:
        texts += [str(body[k]) for k in ("title", "detail") if body.get(k)]
        if body.get("reasonCode"):
            details.append(f"reasonCode: {body['reasonCode']}")
    return KsefError(tuple(codes), "; ".join(t for t in texts if t) or None, tuple(details))


def describe(status: int, error: KsefError) -> str:
    parts = [f"HTTP {status}"]
    head = " ".join([*(str(c) for c in error.codes), error.description or ""]).strip()
    if head:
        parts.append(head)
    text = ": ".join(parts)
    if error.details:
        text += " (" + "; ".join(error.details[:6]) + (", ..." if len(error.details) > 6 else "") + ")"
    return text


class KsefRefused(RequestRefused):
    """A 4xx KSeF will answer again the same way; ``codes`` are KSeF's (21405 validation, 21173 no such session,
    21180 the session's status forbids it, ...), ``code`` the first as text."""

    def __init__(self, message: str, *, status: int, codes: tuple[int, ...] = (), details: tuple[str, ...] = ()):
        super().__init__(message, status=status, code=str(codes[0]) if codes else None)
        self.codes = codes
        self.details = details


class KsefUnavailable(Unavailable, SystemUnavailable):
    """5xx, timeouts and broken connections after the last attempt (a POST: it may have been applied); to the
    hub, KSeF unavailable (its offline mode)."""


class _Unauthorized(Exception):
    """A 401: the bearer token was not (or no longer) good."""


@dataclass(frozen=True)
class _Token:
    value: str
    valid_until: datetime

    def __repr__(self) -> str:
        return f"_Token(<hidden>, valid_until={self.valid_until.isoformat()})"


@dataclass(frozen=True)
class EncryptionKey:
    """The Ministry's RSA key for one usage and the ``publicKeyId`` that names it."""

    key: rsa.RSAPublicKey
    key_id: str | None


def _path(*parts: str) -> str:
    return "/" + "/".join(quote(p, safe="") for p in parts)


class _Storage(HttpClient):
    """The pre-signed part addresses: an httpx client with no base URL and no default headers (what is sent is
    what ``partUploadRequests`` says, plus the body), and a throttle of its own that never waits."""

    log_prefix = "ksef.storage"
    title = f"{TITLE} storage"
    unavailable_class = KsefUnavailable

    def answer_reason(self, answer: Answer) -> str:
        return f"HTTP {answer.status} {answer.response.text[:200].strip()}".strip()


class KsefClient(HttpClient):
    """One seller (a NIP) and its KSeF token; paths are below the API's address (``.../v2``)."""

    log_prefix = "ksef"
    title = TITLE
    auth_statuses = frozenset({401, 403})
    unavailable_class = KsefUnavailable

    def __init__(
        self,
        connector: str,
        base_url: str,
        nip: str,
        token: Secret,
        *,
        throttle: Throttle,
        log: Any,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        attempts: int = 3,
        retry_wait: WaitBaseT | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = utcnow,
        auth_timeout: float = 30.0,
        auth_poll_interval: float = 0.5,
        refresh_margin: float = 60.0,
    ):
        super().__init__(
            connector=connector, throttle=throttle, log=log, timeout=httpx.Timeout(timeout, connect=connect_timeout),
            attempts=attempts, wait=retry_wait if retry_wait is not None else DEFAULT_RETRY_WAIT,
            sleep=sleep, retry_after_default=30.0, base_url=base_url.rstrip("/"),
            headers={"Accept": "application/json", "X-Error-Format": "problem-details"},
            transport=transport,
        )
        self.nip = nip
        self._token = token
        self._pause = sleep
        self._clock = clock
        self._auth_timeout = auth_timeout
        self._auth_poll_interval = auth_poll_interval
        self._margin = timedelta(seconds=refresh_margin)
        self._auth_lock = threading.Lock()
        self._access: _Token | None = None
        self._refresh: _Token | None = None
        self._keys_lock = threading.Lock()
        self._certificates: list[Mapping[str, Any]] | None = None
        self._certificates_at: datetime | None = None
        unlimited = Throttle(LocalRateLimiter(), f"ksef-storage:{connector}", per_minute=1e12, burst=1e12)
        self._storage = _Storage(
            connector=connector, throttle=unlimited, log=log, timeout=httpx.Timeout(timeout, connect=connect_timeout),
            attempts=attempts, wait=retry_wait if retry_wait is not None else DEFAULT_RETRY_WAIT, sleep=sleep,
            transport=transport)

    def close(self) -> None:
        super().close()
        self._storage.close()

    # --- the HTTP layer's hooks ------------------------------------------------------------------------------

    def error_code(self, response: httpx.Response) -> str | None:
        codes = error_body(response).codes
        return str(codes[0]) if codes else None

    def answer_reason(self, answer: Answer) -> str:
        return describe(answer.status, error_body(answer.response))

    # --- requests --------------------------------------------------------------------------------------------

    def _send(self, method: str, path: str, *, bearer: str | None, json_body: Any = None,
              params: Params | None = None, headers: Mapping[str, str] | None = None, retry: bool | None = None,
              expected: Collection[int] = ()) -> httpx.Response:
        """A 2xx answer; a 401 raises _Unauthorized, any other refusal KsefRefused (LoginNeeded for a 403)."""
        sent = dict(headers or {})
        if bearer is not None:
            sent["Authorization"] = f"Bearer {bearer}"
        response = self.send(method, path, params=params, headers=sent, json=json_body, retry=retry, expected=expected)
        status = response.status_code
        if status < 300:
            warning = response.headers.get("X-System-Warning")
            if warning:
                self.log.warning("ksef.system_warning", method=method, path=path, warning=warning[:500])
            return response
        if status == 401:
            raise _Unauthorized(describe(status, error_body(response)))
        error = error_body(response)
        if status == 403:
            raise LoginNeeded(f"{TITLE} {method} {path}: {describe(status, error)}: the token's permissions do not "
                              f"allow this in the context of NIP {self.nip} (it needs InvoiceWrite): generate a token "
                              "with it and update the connector's token")
        if status < 400:
            raise PermanentError(f"{TITLE} {method} {path}: redirected to {response.headers.get('Location')!r}; "
                                 "check the connector's api_url")
        raise KsefRefused(f"{TITLE} {method} {path}: {describe(status, error)}", status=status, codes=error.codes,
                          details=error.details)

    def _decode(self, response: httpx.Response, method: str, path: str) -> Any:
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            self.log.warning("ksef.not_json", method=method, path=path, status=response.status_code,
                             body=response.text[:200])
            raise RetryableError(f"{TITLE} {method} {path}: HTTP {response.status_code} without a JSON body") from exc

    def _public_json(self, method: str, path: str, *, bearer: str | None = None, json_body: Any = None,
                     retry: bool | None = None) -> Any:
        """A call outside the access token (the auth steps, the public keys)."""
        try:
            response = self._send(method, path, bearer=bearer, json_body=json_body, retry=retry)
        except _Unauthorized as exc:
            raise RetryableError(f"{TITLE} {method} {path}: {exc} (the authentication is started again)") from exc
        return self._decode(response, method, path)

    def call(self, method: str, path: str, *, json_body: Any = None, params: Params | None = None,
             headers: Mapping[str, str] | None = None, retry: bool | None = None) -> httpx.Response:
        """A call with the access token; a 401 renews the token and sends the call once more."""
        for attempt in (1, 2):
            token = self.access_token()
            try:
                return self._send(method, path, bearer=token, json_body=json_body, params=params, headers=headers,
                                  retry=retry)
            except _Unauthorized as exc:
                self.log.info("ksef.unauthorized", method=method, path=path, attempt=attempt)
                self._drop_access(token)
                if attempt == 2:
                    raise LoginNeeded(f"{TITLE} {method} {path}: {exc} even with a new access token: check the "
                                      "connector's token and nip") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def call_json(self, method: str, path: str, *, json_body: Any = None, params: Params | None = None,
                  headers: Mapping[str, str] | None = None, retry: bool | None = None) -> Any:
        return self._decode(self.call(method, path, json_body=json_body, params=params, headers=headers, retry=retry),
                            method, path)

    # --- the Ministry's public keys --------------------------------------------------------------------------

    def public_key_certificates(self) -> list[Mapping[str, Any]]:
        """``GET /security/public-key-certificates``, cached for KEYS_TTL (``forget_keys`` drops it)."""
        with self._keys_lock:
            now = self._clock()
            if self._certificates is not None and self._certificates_at and now - self._certificates_at < KEYS_TTL:
                return self._certificates
        body = self._public_json("GET", "/security/public-key-certificates")
        if not isinstance(body, list):
            raise RetryableError(f"{TITLE} GET /security/public-key-certificates: not a list")
        with self._keys_lock:
            self._certificates, self._certificates_at = body, self._clock()
        return body

    def forget_keys(self) -> None:
        with self._keys_lock:
            self._certificates = self._certificates_at = None

    def encryption_key(self, usage: str) -> EncryptionKey:
        """The key for ``usage`` (``KsefTokenEncryption`` or ``SymmetricKeyEncryption``)."""
        try:
            cert = mapping.select_certificate(self.public_key_certificates(), usage, self._clock())
        except LookupError as exc:
            raise RetryableError(f"{TITLE}: {exc}") from exc
        try:
            key = crypto.load_public_key(str(cert["certificate"]))
        except (ValueError, KeyError) as exc:
            raise PermanentError(f"{TITLE}: the {usage} certificate does not hold an RSA key: {exc}") from exc
        key_id = cert.get("publicKeyId")
        return EncryptionKey(key, str(key_id) if key_id else None)

    # --- authentication --------------------------------------------------------------------------------------

    def access_token(self) -> str:
        """A valid access token: the one in memory, a refreshed one, or a new authentication's."""
        with self._auth_lock:
            now = self._clock()
            if self._access is not None and now < self._access.valid_until - self._margin:
                return self._access.value
            if self._refresh is not None and now < self._refresh.valid_until - self._margin:
                if self._refresh_access():
                    return self._access.value  # type: ignore[union-attr]
                self._refresh = None
            self._authenticate()
            return self._access.value  # type: ignore[union-attr]

    def _drop_access(self, token: str) -> None:
        with self._auth_lock:
            if self._access is not None and self._access.value == token:
                self._access = None

    def _token_info(self, info: Any, what: str) -> _Token:
        valid_until = mapping.parse_time(info.get("validUntil")) if isinstance(info, Mapping) else None
        if not isinstance(info, Mapping) or not info.get("token") or valid_until is None:
            raise RetryableError(f"{TITLE}: the answer carries no {what}")
        return _Token(str(info["token"]), valid_until)

    def _refresh_access(self) -> bool:
        """A new access token from the refresh token; False when KSeF refuses the refresh token (revoked,
        expired: 401 or 400 21301), so the caller authenticates again. 5xx and 429 are raised as they are."""
        assert self._refresh is not None
        path = "/auth/token/refresh"
        try:
            # repeating a refresh is harmless: each gives a new access token
            response = self._send("POST", path, bearer=self._refresh.value, retry=True)
        except (_Unauthorized, KsefRefused) as exc:
            self.log.info("ksef.refresh_refused", error=str(exc)[:300])
            return False
        body = self._decode(response, "POST", path)
        self._access = self._token_info(body.get("accessToken"), "access token")
        self.log.info("ksef.token_refreshed", valid_until=self._access.valid_until.isoformat())
        return True

    def _authenticate(self) -> None:
        for attempt in (1, 2):
            key = self.encryption_key(mapping.TOKEN_USAGE)
            # a challenge is harmless to ask for again
            challenge = self._public_json("POST", "/auth/challenge", retry=True)
            try:
                encrypted = crypto.encrypt_token(key.key, self._token.get(), int(challenge["timestampMs"]))
                body = mapping.token_request(str(challenge["challenge"]), self.nip, encrypted, key.key_id)
            except (KeyError, TypeError, ValueError) as exc:
                raise RetryableError(f"{TITLE} POST /auth/challenge: an answer without challenge/timestampMs") from exc
            try:
                init = self._public_json("POST", "/auth/ksef-token", json_body=body)
            except KsefRefused as refused:
                if UNKNOWN_KEY in refused.codes and attempt == 1:
                    self.log.warning("ksef.public_key_unknown", usage=mapping.TOKEN_USAGE)
                    self.forget_keys()
                    continue
                raise
            break
        reference = str(init.get("referenceNumber") or "")
        auth_token = self._token_info(init.get("authenticationToken"), "authenticationToken").value
        self._await_authentication(reference, auth_token)
        tokens = self._public_json("POST", "/auth/token/redeem", bearer=auth_token)
        self._access = self._token_info(tokens.get("accessToken"), "access token")
        self._refresh = self._token_info(tokens.get("refreshToken"), "refresh token")
        self.log.info("ksef.authenticated", reference=reference, valid_until=self._access.valid_until.isoformat())

    def _await_authentication(self, reference: str, auth_token: str) -> None:
        path = _path("auth", reference)
        polls = max(1, math.ceil(self._auth_timeout / self._auth_poll_interval)) if self._auth_poll_interval > 0 else 1
        for n in range(polls + 1):
            try:
                body = self._public_json("GET", path, bearer=auth_token)
            except KsefRefused as refused:
                if refused.status == 410:
                    raise RetryableError(f"{TITLE}: the authentication {reference} expired (410)") from refused
                raise
            status = body.get("status") or {}
            code = int(status.get("code", 0))
            if code == 200:
                return
            if code != 100:
                self._auth_failed(reference, code, status)
            if n < polls:
                self._pause(self._auth_poll_interval)
        raise RetryableError(f"{TITLE}: the authentication {reference} was still in progress after "
                             f"{self._auth_timeout:g} s")

    def _auth_failed(self, reference: str, code: int, status: Mapping[str, Any]) -> NoReturn:
        text = f"{code} {status.get('description') or ''}".strip()
        details = "; ".join(_texts(status.get("details")))
        if details:
            text += f" ({details})"
        if code in AUTH_TRANSIENT:
            raise RetryableError(f"{TITLE}: the authentication {reference} failed: {text}")
        why = AUTH_REFUSALS.get(code, "KSeF refused the authentication").format(nip=self.nip)
        raise LoginNeeded(f"{TITLE}: {why}: {text}: generate a KSeF token with InvoiceWrite for NIP {self.nip} and "
                          "update the connector's token")

    # --- online sessions -------------------------------------------------------------------------------------

    def open_online_session(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        return self._decode(self.call("POST", "/sessions/online", json_body=body), "POST", "/sessions/online")

    def send_invoice(self, session: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        path = _path("sessions", "online", session, "invoices")
        return self._decode(self.call("POST", path, json_body=body), "POST", path)

    def close_online_session(self, session: str) -> None:
        self.call("POST", _path("sessions", "online", session, "close"))

    # --- batch sessions --------------------------------------------------------------------------------------

    def open_batch_session(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        return self._decode(self.call("POST", "/sessions/batch", json_body=body), "POST", "/sessions/batch")

    def close_batch_session(self, session: str) -> None:
        self.call("POST", _path("sessions", "batch", session, "close"))

    def upload_part(self, method: str, url: str, headers: Mapping[str, str | None], content: bytes) -> None:
        """One encrypted part to its pre-signed ``url`` (a 2xx: stored; sesja-wsadowa.md says 201). Repeated
        on 5xx and timeouts; any other answer is KsefRefused with its status (400 the part was refused, 401/403
        the address is not, or no longer, good: its time ran out). The address's query (its signature) never
        reaches a log or a message."""
        sent = {name: value for name, value in headers.items() if value is not None}
        response = self._storage.send(method.upper(), url, headers=sent, content=content, retry=True)
        status = response.status_code
        if status < 300:
            return
        path = httpx.URL(url).path
        raise KsefRefused(f"{TITLE} storage {method.upper()} {path}: HTTP {status} {response.text[:200].strip()}"
                          .strip(), status=status)

    # --- sessions of both kinds ------------------------------------------------------------------------------

    def session_status(self, session: str) -> Mapping[str, Any]:
        return self.call_json("GET", _path("sessions", session))

    def invoice_status(self, session: str, reference: str) -> Mapping[str, Any]:
        return self.call_json("GET", _path("sessions", session, "invoices", reference))

    def session_invoices(self, session: str, *, page_size: int = 1000, max_pages: int = 20) -> list[Mapping[str, Any]]:
        """Every invoice of the session, page after page (``x-continuation-token``; none or empty: the last)."""
        path = _path("sessions", session, "invoices")
        out: list[Mapping[str, Any]] = []
        token: str | None = None
        seen: set[str] = set()
        for _page in range(max_pages):
            headers = {"x-continuation-token": token} if token else None
            body = self.call_json("GET", path, params={"pageSize": page_size}, headers=headers)
            out.extend(body.get("invoices") or ())
            token = body.get("continuationToken") or None
            if token is None:
                return out
            if token in seen:
                raise RetryableError(f"{TITLE} GET {path}: the continuation token repeats")
            seen.add(token)
        raise PermanentError(f"{TITLE} GET {path}: more than {max_pages} pages of {page_size} invoices")

    def invoice_upo(self, session: str, reference: str) -> tuple[bytes, str | None]:
        """The UPO's bytes and its ``x-ms-meta-hash`` (base64 SHA-256), when KSeF sent one."""
        response = self.call("GET", _path("sessions", session, "invoices", reference, "upo"),
                             headers={"Accept": "application/xml"})
        return response.content, response.headers.get("x-ms-meta-hash")


__all__ = ["EncryptionKey", "KsefClient", "KsefError", "KsefRefused", "KsefUnavailable", "describe", "error_body"]
