"""The `hub demo` hooks of KSeF and NBP: each simulator on loopback, the connector built from the options the
demo writes (real HTTP to 127.0.0.1), an invoice of the hub's own making accepted with its KSeF number, and a
euro rate read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from connectors.ksef.crypto import crc8_hex
from hub.invoicing.amounts import LineIn
from hub.invoicing.issue import Draft, store
from hub.kernel.ports.invoicing import OutgoingInvoice
from hub.platform import registry
from hub.platform.db import make_engine, transaction, upgrade
from hub.platform.ratelimit import LocalRateLimiter, Throttle
from tests.invoicing.support import settings

TODAY = datetime.now(ZoneInfo("Europe/Warsaw")).date()  # the seller's calendar, as invoices are dated


def _port(kind: str, options: dict[str, object]) -> object:
    spec = registry.get(kind)
    assert spec is not None and spec.options_model is not None
    known = {k: v for k, v in options.items() if k != "rate_limit_per_minute"}
    throttle = Throttle(LocalRateLimiter(), f"{kind}:demo", per_minute=60_000.0, burst=1000.0)
    return spec.factory(kind, spec.options_model.model_validate(known), {"throttle": throttle})


def test_the_ksef_demo_hook_accepts_an_invoice_of_the_hubs_making(tmp_path: object) -> None:
    spec = registry.get("ksef")
    assert spec is not None and spec.role == "einvoicing"
    hook = spec.extra["demo"]()
    try:
        options = hook.start()
        port = _port("ksef", options)
        engine = make_engine(f"sqlite:///{tmp_path}/demo.db")
        upgrade(engine)
        config = settings(seller={**settings().seller.model_dump(), "nip": hook.seller_nip})
        draft = Draft(origin="demo:1", kind="VAT", series="FV", business=True,
                      buyer={"name": "Firma", "nip": "7740001454", "country": "PL"},
                      seller=config.seller.model_dump(), issue_date=TODAY, sale_date=TODAY,
                      currency="PLN", basis="gross", lines=[LineIn("Towar", Decimal(2), Decimal("12.30"), "23")],
                      payment={"form": "transfer", "paid_at": TODAY.isoformat()})
        with transaction(engine) as session:
            invoice = store(session, config, draft, now=datetime.now(UTC), send=True).invoice
            xml, sha, number = invoice.xml.encode(), invoice.xml_sha256, invoice.number
        session_ref = port.open_session()  # type: ignore[attr-defined]
        reference = port.send(session_ref, OutgoingInvoice(number, xml, sha))  # type: ignore[attr-defined]
        sent = port.invoice_status(session_ref, reference)  # type: ignore[attr-defined]
        port.close_session(session_ref)  # type: ignore[attr-defined]
        assert sent.status == "accepted" and sent.invoice_number == number
        assert sent.ksef_number and crc8_hex(sent.ksef_number[:32]) == sent.ksef_number[-2:]
        assert hook.accepted() == 1 and hook.requests() > 0
    finally:
        hook.stop()


def test_the_nbp_demo_hook_reads_a_rate_on_loopback() -> None:
    spec = registry.get("nbp")
    assert spec is not None and spec.role == "rates"
    hook = spec.extra["demo"]()
    try:
        port = _port("nbp", hook.start())
        day = TODAY - timedelta(days=3)
        rate = port.rate_before("EUR", day)  # type: ignore[attr-defined]
        assert rate.effective_date < day and rate.mid > 0 and "/A/NBP/" in rate.table_no
        assert hook.requests() >= 1
    finally:
        hook.stop()


def test_the_ksef_demo_hook_goes_down_and_issues_an_offline_certificate(tmp_path: object) -> None:
    """The demo's offline part: KSeF unreachable until the hook says otherwise (the port's SystemUnavailable,
    which puts invoices in offline mode), and a certificate of type Offline that signs KOD II."""
    from pathlib import Path

    import pytest

    from hub.invoicing.qr import OfflineSigner
    from hub.kernel.ports.invoicing import SystemUnavailable

    hook = registry.get("ksef").extra["demo"]()  # type: ignore[union-attr]
    try:
        port = _port("ksef", hook.start())
        hook.unavailable(True)
        with pytest.raises(SystemUnavailable):
            port.open_session()  # type: ignore[attr-defined]
        hook.unavailable(False)
        assert port.open_session()  # type: ignore[attr-defined]
        options = hook.offline_certificate(Path(str(tmp_path)) / "ksef")
        signer = OfflineSigner.load(Path(options["certificate"]), Path(options["private_key"]))
        assert len(signer.sign(b"qr-test.ksef.mf.gov.pl/certificate/...")) == 64
    finally:
        hook.stop()
