"""KSeF's offline mode end to end against the KSeF simulator, on SQLite and PostgreSQL: KSeF unreachable when
invoices are due to go puts them in offline mode with their deadline; they go with offlineMode once KSeF
answers and KSeF records them as offline; an invoice left unsent past its day of issue goes offline too; an
offline invoice KSeF rejects is resent, after the fix, as a technical correction naming the rejected
document's hash (korekta-techniczna.md); a second technical correction of the same document is refused."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from connectors.ksef.simulator import KsefSimulator
from hub.app.wiring import ProcessServices
from hub.invoicing.models import Invoice
from hub.invoicing.offline import deadline
from hub.jobs.handlers import JobContext
from hub.jobs.queue import ClaimedJob
from hub.kernel.errors import Deferred
from hub.platform.db import transaction
from hub.platform.logs import get_logger
from tests.invoicing.support import add_order
from tests.invoicing.test_invoicing_flow import config

TODAY = datetime.now(UTC).astimezone().date()


def ctx(engine: Engine, kind: str) -> JobContext:
    return JobContext(job=ClaimedJob(1, kind, {}, "k", None, 1, None, 0, "t"), engine=engine,
                      log=get_logger("test"), stopping=threading.Event())


def invoices(engine: Engine) -> list[Invoice]:
    with transaction(engine) as session:
        return list(session.execute(select(Invoice).order_by(Invoice.id)).scalars())


def settle(hub: Any, engine: Engine) -> None:
    for _ in range(40):
        try:
            hub.handle_status(ctx(engine, "invoicing.ksef_status"))
        except Deferred:
            continue
        if all(i.state in ("accepted", "rejected") for i in invoices(engine)):
            return
    raise AssertionError([(i.number, i.state) for i in invoices(engine)])


@pytest.fixture
def ksef_hub(db_url: str, engine: Engine, tmp_path: Path) -> tuple[KsefSimulator, Any]:
    ksef = KsefSimulator()
    services = ProcessServices(config(tmp_path, db_url), transports={"ksef": ksef.transport()})
    yield ksef, services.invoicing(engine)
    services.sync(engine).connectors.close()


def test_ksef_unreachable_puts_invoices_in_offline_mode_until_it_answers(
        engine: Engine, ksef_hub: tuple[KsefSimulator, Any]) -> None:
    ksef, hub = ksef_hub
    for n in range(2):
        hub.issue_order(engine, add_order(engine, f"S{n}", [("A", 1, f"{100 + n}.00", "23", "goods")]))
    assert not any(i.offline for i in invoices(engine))
    ksef.fail_next("/sessions/online", status=503, times=1, method="POST")
    with pytest.raises(Deferred, match="KSeF unavailable"):  # tried again spending no attempt: never dead
        hub.handle_send(ctx(engine, "invoicing.send"))
    waiting = invoices(engine)
    assert all(i.offline and i.state == "issued" for i in waiting)
    issue_date = waiting[0].issue_date
    assert all(i.ksef_deadline == deadline(issue_date) for i in waiting) and waiting[0].ksef_deadline > issue_date
    assert hub.handle_send(ctx(engine, "invoicing.send"))["sent"] == 2  # KSeF answers again
    settle(hub, engine)
    done = invoices(engine)
    assert all(i.state == "accepted" and i.offline for i in done)
    modes = {inv.sha256: inv.mode for s in ksef.sessions.values() for inv in s.invoices}
    assert [modes[i.xml_sha256] for i in done] == ["Offline", "Offline"]  # sent with offlineMode: true


def test_an_invoice_not_sent_on_its_day_of_issue_goes_offline(engine: Engine,
                                                              ksef_hub: tuple[KsefSimulator, Any]) -> None:
    ksef, hub = ksef_hub
    hub.issue_order(engine, add_order(engine, "S1", [("A", 1, "100.00", "23", "goods")]))
    hub.issue_order(engine, add_order(engine, "S2", [("A", 1, "50.00", "23", "goods")]))
    yesterday = invoices(engine)[0]
    with transaction(engine) as session:  # as if issued yesterday and KSeF not reached since
        session.execute(update(Invoice).where(Invoice.id == yesterday.id)
                        .values(issue_date=yesterday.issue_date - timedelta(days=1)))
    hub.handle_send(ctx(engine, "invoicing.send"))
    old, new = invoices(engine)
    assert old.offline and old.ksef_deadline == deadline(old.issue_date) and not new.offline
    settle(hub, engine)
    modes = {inv.sha256: inv.mode for s in ksef.sessions.values() for inv in s.invoices}
    assert modes[old.xml_sha256] == "Offline" and modes[new.xml_sha256] == "Online"


def test_an_offline_invoice_ksef_rejected_is_resent_as_a_technical_correction(
        engine: Engine, ksef_hub: tuple[KsefSimulator, Any]) -> None:
    ksef, hub = ksef_hub
    order_id = add_order(engine, "S1", [("A", 1, "100.00", "23", "goods")])
    first = hub.issue_order(engine, order_id).invoice
    with transaction(engine) as session:
        session.execute(update(Invoice).where(Invoice.id == first.id).values(offline=True,
                                                                             ksef_deadline=deadline(TODAY)))
    ksef.reject_invoice(first.number, 430, "Błąd weryfikacji semantyki dokumentu faktury",
                        ["a technical refusal"])
    hub.handle_send(ctx(engine, "invoicing.send"))
    settle(hub, engine)
    rejected = invoices(engine)[0]
    assert rejected.state == "rejected" and rejected.ksef_code == 430
    # the operator's retry (hub invoices retry): issued again from today's data under its number
    with transaction(engine) as session:
        session.execute(update(Invoice).where(Invoice.id == rejected.id).values(state="problem"))
    hub.settings.seller.__dict__["email"] = "faktury-poprawione@example.pl"  # a fix that changes the document
    again = hub.issue_order(engine, order_id, on_request=True).invoice
    assert again.number == rejected.number and again.xml_sha256 != rejected.xml_sha256
    assert again.corrects_sha256 == rejected.xml_sha256 and again.offline
    hub.handle_send(ctx(engine, "invoicing.send"))
    settle(hub, engine)
    final = invoices(engine)[0]
    assert final.state == "accepted" and final.ksef_number
    sent = {inv.sha256: inv for s in ksef.sessions.values() for inv in s.invoices}
    assert sent[final.xml_sha256].corrects == rejected.xml_sha256 and sent[final.xml_sha256].mode == "Offline"
