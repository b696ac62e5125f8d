"""The connector's own keys under ``[connectors.NAME]`` (kind = "ksef").

The KSeF token is generated in the Ministry's KSeF application (or ``POST /tokens``) by someone with the
seller's owner rights, with the ``InvoiceWrite`` permission; ``nip`` is the seller's NIP, the context the hub
authenticates in (auth/context-identifier-nip.md).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator
from stdnum.pl import nip as pl_nip

from connectors.urls import check_base_url
from hub.platform.config import Duration, SecretValue

ENVIRONMENTS: dict[str, str] = {
    # open-api.json ``servers`` and srodowiska.md; the demo and production API addresses are not printed in the
    # vendored documents: they follow the documented docs addresses (api-demo / api .ksef.mf.gov.pl/docs/v2)
    "test": "https://api-test.ksef.mf.gov.pl/v2",
    "demo": "https://api-demo.ksef.mf.gov.pl/v2",
    "production": "https://api.ksef.mf.gov.pl/v2",
}
MAX_INVOICE_BYTES = 1_000_000  # weryfikacja-faktury.md "Rozmiar pliku": 1 MB without attachments
# sesja-wsadowa.md / weryfikacja-faktury.md "Ograniczenia ilościowe": a batch's archive is cut into parts of at
# most 100 MB (100 000 000 bytes) before encryption, at most 50 parts, 5 GB in all, 10 000 invoices a session
MAX_BATCH_PART_BYTES = 100_000_000
MAX_SESSION_INVOICES = 10_000


class KsefOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: Literal["test", "demo", "production"] = "production"
    api_url: str | None = None  # overrides the environment's address, e.g. the simulator on loopback
    nip: str = Field(pattern=r"^[0-9]{10}$")  # the seller's NIP: the authentication context
    token: SecretValue  # a KSeF token with InvoiceWrite for that NIP
    request_timeout: Duration = 30.0
    connect_timeout: Duration = 10.0
    attempts: StrictInt = Field(3, ge=1, le=10)  # tries per idempotent request on 5xx/timeouts
    # authentication is asynchronous (GET /auth/{referenceNumber} answers 100 until it is done)
    auth_timeout: Duration = 30.0
    auth_poll_interval: Duration = 0.5
    # an access token is renewed this long before its validUntil (the clocks of two machines differ)
    token_refresh_margin: Duration = 60.0
    # invoice verification is asynchronous too: invoice_status asks again for up to this long before it
    # answers "processing" (0: one look); the hub's queue asks later
    verification_timeout: Duration = 3.0
    verification_poll_interval: Duration = 1.0
    list_page_size: StrictInt = Field(1000, ge=10, le=1000)  # pageSize of GET /sessions/{ref}/invoices
    list_max_pages: StrictInt = Field(20, ge=1, le=1000)  # a session holds at most 10 000 invoices
    max_invoice_bytes: StrictInt = Field(MAX_INVOICE_BYTES, ge=1)  # raised per context by the Ministry only
    # batch sessions: the archive's parts before encryption (the spec's limit; smaller only to test many parts)
    # and the invoices one batch may hold (raised per context by the Ministry only)
    batch_part_bytes: StrictInt = Field(MAX_BATCH_PART_BYTES, ge=1, le=MAX_BATCH_PART_BYTES)
    batch_max_invoices: StrictInt = Field(MAX_SESSION_INVOICES, ge=1)
    # check each UPO against the vendored UPO v4-3 schema (the known misprints of the Ministry's own
    # examples tolerated, see upo.py); well-formedness and the refusal of a DOCTYPE always apply
    validate_upo: StrictBool = True

    @field_validator("nip")
    @classmethod
    def _nip_check_digit(cls, nip: str) -> str:
        if not pl_nip.is_valid(nip):
            raise ValueError(f"{nip} is not a valid NIP (wrong check digit)")
        return nip

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return check_base_url(value, what="an http:// or https:// URL", example=ENVIRONMENTS["production"],
                              secret="the KSeF token and the invoices travel there")

    @property
    def api_base(self) -> str:
        return self.api_url or ENVIRONMENTS[self.environment]
