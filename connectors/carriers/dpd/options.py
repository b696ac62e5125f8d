"""The connector's own keys under ``[connectors.NAME]`` (kind = "dpd").

The login, password and master FID (DPD's "numkat", the client number) come from DPD Polska with the
DPDServices account; the demo environment has its own published test account (DPD's client documentation
v2.87, "Service addresses"; shared/notes/carriers.md, "DPD Polska").
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from connectors.urls import check_base_url
from hub.platform.config import Duration, SecretValue

# The object interface's endpoint (the WSDL's soap:address without "?WSDL"): DPD's client documentation
# v2.87, "Service addresses" ("Object version"), and shared/notes/carriers.md, "DPD Polska", "Endpoints".
ENVIRONMENTS: dict[str, str] = {
    "production": "https://dpdservices.dpd.com.pl/DPDPackageObjServicesService/DPDPackageObjServices",
    "demo": "https://dpdservicesdemo.dpd.com.pl/DPDPackageObjServicesService/DPDPackageObjServices",
}

# The service codes mappings/delivery.toml may use; mapping.SERVICES says what each one sends.
DEFAULT_SERVICES: tuple[str, ...] = ("classic", "dpd-pickup", "guarantee-0930", "guarantee-1200",
                                     "guarantee-saturday")


class DpdOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: Literal["production", "demo"] = "production"
    service_url: str | None = None  # overrides the environment's address, e.g. the simulator on loopback
    login: str = Field(min_length=1)
    password: SecretValue
    master_fid: StrictInt = Field(ge=1)  # authDataV1.masterFid: the client number (numkat)
    # the sender's client number, sent as sender.fid so that the handover protocol (pickupAddress.fid) matches
    # the sender of the packages (documentation v2.87, generateProtocolV1, "Validation"); default: master_fid
    sender_fid: StrictInt | None = Field(None, ge=1)
    # who pays DPD: SENDER (the sender's fid) or THIRD_PARTY (thirdPartyFID = the master FID)
    payer_type: Literal["SENDER", "THIRD_PARTY"] = "SENDER"
    services: tuple[str, ...] = Field(DEFAULT_SERVICES, min_length=1)
    # generateSpedLabelsV4: BIC3 (standard) or EXTENDED, and the optional labelVariant (e.g. "RUCH")
    label_type: Literal["BIC3", "EXTENDED"] = "BIC3"
    label_variant: str = ""
    # the payer name and the ordering person packagesPickupCallV4 requires (pickupPayer.payerName,
    # pickupCustomer); default: the pickup address's company, or its name
    pickup_payer_name: str | None = Field(None, max_length=100)
    pickup_customer_name: str | None = Field(None, max_length=100)
    request_timeout: Duration = 30.0
    connect_timeout: Duration = 10.0
    # tries per request that is safe to repeat (labels, pickup availability) on 5xx/timeouts; generating
    # numbers and ordering a courier are sent once (see carrier.py on what a lost answer means)
    attempts: StrictInt = Field(3, ge=1, le=10)

    @field_validator("service_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return check_base_url(value, what="an http:// or https:// URL", example=ENVIRONMENTS["production"],
                              secret="the DPD login and password travel in every request body")

    @field_validator("services")
    @classmethod
    def _known_services(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(DEFAULT_SERVICES))
        if unknown:
            raise ValueError(f"unknown DPD service code(s) {', '.join(unknown)} (known: {', '.join(DEFAULT_SERVICES)})")
        return value

    @property
    def address(self) -> str:
        return self.service_url or ENVIRONMENTS[self.environment]

    @property
    def fid(self) -> int:
        """The sender's FID (sender.fid in the packages, pickupAddress.fid in the protocol)."""
        return self.sender_fid or self.master_fid
