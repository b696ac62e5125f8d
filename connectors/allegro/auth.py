"""OAuth2 for one Allegro account: the device flow for login, refresh through the TokenStore.

Refresh tokens are single-use and every refresh returns a new pair, so a
refresh only ever happens inside ``TokenStore.valid`` (one refresher per
account, the new pair committed before anyone uses it). A dead refresh token
(``invalid_grant``) raises LoginNeeded: jobs are held until `hub allegro login`.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from connectors.allegro.client import AllegroHttp
from hub.kernel.clock import utcnow
from hub.kernel.errors import HubError, LoginNeeded, PermanentError, RetryableError
from hub.platform.credentials import TokenSet, TokenStore

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
REFRESH_MARGIN = timedelta(minutes=5)  # access tokens live 12 h; refresh a little before they end
FORCE = timedelta(days=36500)  # a margin no token survives: refresh now


class LoginFailed(HubError):
    """The device-flow login did not finish (denied, expired, or the app's credentials are wrong)."""


@dataclass(frozen=True)
class DeviceAuthorization:
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float
    interval: float


def _num(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def token_set(payload: dict[str, Any]) -> TokenSet:
    """A token endpoint answer as a TokenSet (expiry as an aware UTC datetime)."""
    return TokenSet(
        access_token=payload["access_token"],
        refresh_token=payload.get("refresh_token"),
        expires_at=utcnow() + timedelta(seconds=_num(payload.get("expires_in"), 43199)),
        scope=payload.get("scope"),
    )


class AllegroAuth:
    def __init__(
        self,
        *,
        account: str,
        http: AllegroHttp,
        tokens: TokenStore,
        auth_base: str,
        client_id: str,
        client_secret: str,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.account = account
        self.http = http
        self.store = tokens
        self.auth_base = auth_base.rstrip("/")
        self.client_id = client_id
        self._basic = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        self._sleep = sleep
        self._clock = clock

    # --- OAuth endpoint ----------------------------------------------------------------

    def _post(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        response = self.http.send(
            "POST", self.auth_base + path, data=form, expected=(400, 401),
            headers={"Authorization": self._basic, "Accept": "application/json"},
        )
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code == 401:
            raise PermanentError(f"Allegro refused the application's credentials (client_id {self.client_id}): "
                                 f"{body.get('error_description') or body.get('error') or 'unauthorized'}")
        if response.status_code > 400:
            raise PermanentError(f"Allegro OAuth {path} answered {response.status_code}: check auth_url")
        return response.status_code, body

    # --- device flow (login) -----------------------------------------------------------

    def start_device_flow(self) -> DeviceAuthorization:
        status, body = self._post("/auth/oauth/device", {"client_id": self.client_id})
        if status != 200 or "device_code" not in body:
            raise LoginFailed(f"Allegro did not start the device flow: {body.get('error_description') or body}")
        return DeviceAuthorization(
            device_code=body["device_code"],
            user_code=body["user_code"],
            verification_uri=body["verification_uri"],
            verification_uri_complete=body.get("verification_uri_complete"),
            expires_in=_num(body.get("expires_in"), 3600),
            interval=_num(body.get("interval"), 5),
        )

    def wait_for_approval(self, device: DeviceAuthorization) -> TokenSet:
        """Poll the token endpoint at the given interval until the user confirms (RFC 8628)."""
        deadline = self._clock() + device.expires_in
        interval = device.interval
        while True:
            status, body = self._post("/auth/oauth/token", {"grant_type": DEVICE_GRANT,
                                                            "device_code": device.device_code})
            if status == 200 and "access_token" in body:
                return token_set(body)
            error = body.get("error")
            if error == "slow_down":
                interval += 5
            elif error != "authorization_pending":
                raise LoginFailed(f"Allegro login failed: {body.get('error_description') or error or body}")
            if self._clock() + interval > deadline:
                raise LoginFailed("the user code expired before the login was confirmed; run the login again")
            self._sleep(interval)

    def login(self, device: DeviceAuthorization) -> TokenSet:
        tokens = self.wait_for_approval(device)
        self.store.save(self.account, tokens)
        return tokens

    # --- refresh -----------------------------------------------------------------------

    def _refresh(self, stored: TokenSet) -> TokenSet:
        """Called by TokenStore.valid under the account's lock with the pair as stored now."""
        if not stored.refresh_token:
            raise LoginNeeded(f"connector {self.account} has no refresh token: run `hub allegro login "
                              f"{self.account}`")
        status, body = self._post("/auth/oauth/token", {"grant_type": "refresh_token",
                                                        "refresh_token": stored.refresh_token})
        if status == 200 and "access_token" in body:
            return token_set(body)
        error = body.get("error")
        if error in ("invalid_grant", "invalid_token", "unauthorized_client"):
            raise LoginNeeded(f"Allegro refused the refresh token of {self.account} ({error}): run "
                              f"`hub allegro login {self.account}`")
        raise RetryableError(f"Allegro token refresh failed: {body.get('error_description') or error or status}")

    def _valid(self, refresher: Callable[[TokenSet], TokenSet], margin: timedelta) -> TokenSet:
        try:
            return self.store.valid(self.account, refresher, margin=margin)
        except LoginNeeded as exc:
            # TokenStore.valid records login-needed inside the transaction that the re-raised error
            # rolls back; record it again in a transaction of its own so the jobs are held.
            self.store.mark_login_needed(self.account, str(exc))
            raise

    def access_token(self) -> str:
        return self._valid(self._refresh, REFRESH_MARGIN).access_token

    def refresh_rejected(self, rejected: str) -> str:
        """After a 401: refresh now, unless another caller already replaced the rejected token."""
        def refresh_unless_replaced(stored: TokenSet) -> TokenSet:
            return stored if stored.access_token != rejected else self._refresh(stored)

        return self._valid(refresh_unless_replaced, FORCE).access_token

    def login_needed(self, reason: str) -> None:
        self.store.mark_login_needed(self.account, reason)


def describe_device(device: DeviceAuthorization) -> str:
    url = device.verification_uri_complete or device.verification_uri
    return (f"Open {url} and confirm the code {device.user_code} "
            f"(it expires in {int(device.expires_in // 60)} min).")
