"""The connector's own keys under ``[connectors.NAME]`` (kind = "poczta-polska").

Addresses: the vendored WSDL's soap:address (production) and its test twin named in
/work/shared/specs/SOURCES.md ("wsdl/test/en.wsdl ... differs only in soap:address"); the test
environment needs its own EN test account (/work/shared/notes/carriers.md, "Poczta Polska").
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from connectors.urls import check_base_url
from hub.platform.config import Duration, SecretValue

ENVIRONMENTS: dict[str, str] = {
    "production": "https://e-nadawca.poczta-polska.pl/websrv/en.php",
    "test": "https://en-testwebapi.poczta-polska.pl/websrv/en.php",
}
# our service codes (mappings/delivery.toml) -> the concrete przesylkaType subtype of en.wsdl
SERVICE_TYPES: dict[str, str] = {
    "pocztex_kurier": "pocztex2021KurierType",
    "pocztex_na_dzis": "pocztex2021NaDzisType",
    "paczka_pocztowa": "paczkaPocztowaType",
    "przesylka_pobraniowa": "przesylkaPobraniowaType",
}
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


class PocztaPolskaOptions(BaseModel):
    """Config of one EN WebAPI account (HTTP Basic: the WebAPI login and password)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: Literal["production", "test"] = "production"
    # overrides the environment's address (e.g. the simulator on 127.0.0.1)
    service_url: str | None = None
    login: str = Field(min_length=1)
    password: SecretValue
    timeout: Duration = 60.0  # read timeout of one SOAP call
    connect_timeout: Duration = 10.0
    # tries of a READ call on a timeout, 5xx or broken answer; writes are sent once (looked up before resending)
    attempts: StrictInt = Field(3, ge=1, le=10)
    # the buffer (bufor) parcels go into: a fixed idBufor, or (none) the active buffer described ``bufor_opis``,
    # created with createEnvelopeBufor when there is none
    bufor_id: StrictInt | None = Field(None, ge=1)
    bufor_opis: str = Field("hub", min_length=1, max_length=100)
    # the posting office (urzadNadania, from getUrzedyNadania) for new buffers and send_envelope
    urzad_nadania: StrictInt | None = Field(None, ge=1)
    services: tuple[str, ...] = tuple(SERVICE_TYPES)
    label_resolution: Literal["DPI_203", "DPI_300"] = "DPI_203"  # ZPL labels (getPrintForParcel)
    # sent envelopes searched for our guid (a retry after the day's close; a cancel after it)
    envelope_lookup_days: StrictInt = Field(30, ge=0, le=366)
    # EN has no call that lists pickup windows: these local (Europe/Warsaw) windows are offered on these
    # ISO weekdays (1 = Monday)
    pickup_windows: tuple[str, ...] = ("09:00-12:00", "12:00-16:00")
    pickup_weekdays: tuple[StrictInt, ...] = (1, 2, 3, 4, 5)
    # where EN e-mails the courier order's confirmation (potwierdzenieZamowieniaEmail); default: the address's
    pickup_email: str | None = Field(None, min_length=6, max_length=50)

    @field_validator("service_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return check_base_url(value, what="an http:// or https:// URL", example=ENVIRONMENTS["production"],
                              secret="the EN login and password travel there as HTTP Basic auth")

    @field_validator("services")
    @classmethod
    def _services(cls, codes: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [c for c in codes if c not in SERVICE_TYPES]
        if unknown or not codes:
            raise ValueError(f"unknown service {', '.join(unknown) or '(none given)'}; "
                             f"known: {', '.join(SERVICE_TYPES)}")
        return codes

    @field_validator("pickup_windows")
    @classmethod
    def _windows(cls, windows: tuple[str, ...]) -> tuple[str, ...]:
        for window in windows:
            match = _WINDOW.match(window.strip())
            if match is None or match.group(1, 2) >= match.group(3, 4):
                raise ValueError(f"{window!r} is not a window like \"09:00-12:00\" (start before end)")
        return tuple(w.strip() for w in windows)

    @field_validator("pickup_weekdays")
    @classmethod
    def _weekdays(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        if any(d < 1 or d > 7 for d in days):
            raise ValueError("weekdays are 1 (Monday) to 7 (Sunday)")
        return days

    @property
    def url(self) -> str:
        return self.service_url or ENVIRONMENTS[self.environment]
