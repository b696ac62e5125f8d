"""Test kit for the KSeF connector: FA(3) invoices made from the Ministry's own example, and the port wired to
the simulator the way the runtime wires it (the shared HTTP layer, a throttle that never sleeps, the
simulator's clock)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import structlog
from lxml import etree
from tenacity import wait_none

from connectors.ksef import KsefOptions, build_einvoicing
from connectors.ksef.crypto import sha256_b64
from connectors.ksef.einvoicing import KsefEInvoicing
from connectors.ksef.simulator import DEFAULT_NIP, DEFAULT_TOKEN, KsefSimulator
from hub.invoicing.schemas import FA3_NS
from hub.kernel.ports.invoicing import OutgoingInvoice
from hub.platform.ratelimit import LocalRateLimiter, Throttle

API_URL = "https://ksef.sim/v2"
PROBLEM = {"X-Error-Format": "problem-details"}  # errors as Problem Details (the API's own header)
# tests/connectors/ksef/ -> parents[4] is the folder holding the clone (/work), which holds shared/: a clone at
# /work/<any name> finds the same vendor files
SHARED = Path(__file__).resolve().parents[4] / "shared" / "specs"
SPEC_PATH = SHARED / "ksef" / "open-api.json"
EXAMPLE = SHARED / "invoices" / "FA3" / "examples" / "FA_3_Przykład_1.xml"  # P_1 2026-02-15, seller 9999999999
SELLER = DEFAULT_NIP  # 5260250274: a NIP with a valid check digit
NS = {"fa": FA3_NS}


def invoice_xml(number: str = "FV/1/12/2026", *, seller: str = SELLER, issue_date: date | None = None,
                total: str | None = None) -> bytes:
    """The Ministry's FA_3_Przykład_1.xml with our seller's NIP and invoice number (P_2); ``total`` replaces
    P_15 (an invalid amount makes the document invalid against FA(3))."""
    root = etree.fromstring(EXAMPLE.read_bytes())
    root.find("fa:Podmiot1/fa:DaneIdentyfikacyjne/fa:NIP", NS).text = seller  # type: ignore[union-attr]
    root.find("fa:Fa/fa:P_2", NS).text = number  # type: ignore[union-attr]
    if issue_date is not None:
        root.find("fa:Fa/fa:P_1", NS).text = issue_date.isoformat()  # type: ignore[union-attr]
    if total is not None:
        root.find("fa:Fa/fa:P_15", NS).text = total  # type: ignore[union-attr]
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def outgoing(number: str = "FV/1/12/2026", **more: Any) -> OutgoingInvoice:
    xml = invoice_xml(number, **more)
    return OutgoingInvoice(key=number, xml=xml, sha256=sha256_b64(xml))


@dataclass
class Sleeps:
    """Stands in for time.sleep: records instead of waiting."""

    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@dataclass
class Wired:
    port: KsefEInvoicing
    sleeps: Sleeps
    options: KsefOptions
    checked: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status) validated
    storage: list[tuple[str, str, int]] = field(default_factory=list)  # the pre-signed addresses' exchanges


def wire(sim: KsefSimulator, transport: httpx.BaseTransport, *, token: str = DEFAULT_TOKEN, nip: str = SELLER,
         **options: Any) -> Wired:
    """The port on ``transport`` (the simulator, usually through the spec-validating transport)."""
    sleeps = Sleeps()
    throttle = Throttle(LocalRateLimiter(), "ksef:test", per_minute=60_000.0, burst=1000.0, sleep=sleeps)
    validated = KsefOptions.model_validate({"api_url": API_URL, "nip": nip, "token": token, **options})
    services = {"throttle": throttle, "transport": transport,
                "log": structlog.get_logger("connectors.ksef").bind(connector="ksef-test")}
    port = build_einvoicing("ksef-test", validated, services, retry_wait=wait_none(), sleep=sleeps, clock=sim.now)
    return Wired(port, sleeps, validated)
