"""Sending issued invoices to KSeF exactly once (with an in-memory KSeF): a batch in one session, the
KSeF numbers and receipts recorded, a rejection kept as the invoice's problem, a lost answer found again
by the invoice's hash, a 5xx retried, a duplicate taking the first send's number, and a correction that
waits for its original's KSeF number."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from hub.invoicing.models import Invoice
from hub.invoicing.schemas import fa3, problems
from hub.jobs.queue import ClaimedJob
from hub.kernel.errors import Deferred, RetryableError
from hub.platform.db import transaction
from tests.invoicing.fake_ksef import FakeKsef
from tests.invoicing.support import NOW, add_order, service, settings


@dataclass
class Ctx:
    engine: Engine
    job: ClaimedJob = field(default_factory=lambda: ClaimedJob(1, "invoicing.send", {}, "k", None, 1, None, 0, "t"))
    stopping: threading.Event = field(default_factory=threading.Event)
    payload: dict[str, Any] = field(default_factory=dict)


def _issue(engine: Engine, hub: Any, count: int) -> list[int]:
    ids = []
    for n in range(count):
        order_id = add_order(engine, f"S{n}", [("A", 1, f"{100 + n}.00", "23", "goods")])
        ids.append(hub.issue_order(engine, order_id, now=NOW).invoice.id)
    return ids


def _states(engine: Engine) -> dict[int, tuple[str, str | None]]:
    with transaction(engine) as session:
        return {i.id: (i.state, i.ksef_number) for i in session.execute(select(Invoice)).scalars()}


def _settle(hub: Any, engine: Engine) -> dict[str, Any]:
    for _ in range(10):
        try:
            return hub.handle_status(Ctx(engine))  # type: ignore[no-any-return]
        except Deferred:
            continue
    raise AssertionError("KSeF never verified the invoices")


def test_issued_invoices_go_in_one_session_and_come_back_with_ksef_numbers(engine: Engine) -> None:
    ksef = FakeKsef()
    hub = service(settings(ksef="ksef"), ksef=ksef)
    ids = _issue(engine, hub, 3)
    assert {s for s, _ in _states(engine).values()} == {"issued"}
    assert hub.handle_send(Ctx(engine))["sent"] == 3
    assert len(ksef.sessions) == 1 and ksef.sends == [f"FV/{n}/12/2026" for n in (1, 2, 3)]
    assert _settle(hub, engine) == {"accepted": 3, "rejected": 0}
    states = _states(engine)
    assert all(states[i][0] == "accepted" and states[i][1] for i in ids)
    with transaction(engine) as session:
        assert all(i.upo and i.ksef_at for i in session.execute(select(Invoice)).scalars())
    assert hub.handle_send(Ctx(engine))["sent"] == 0 and len(ksef.sends) == 3  # nothing twice


def test_a_lost_answer_is_found_by_hash_and_nothing_is_sent_twice(engine: Engine) -> None:
    ksef = FakeKsef(lose_answers=1)
    hub = service(settings(ksef="ksef"), ksef=ksef)
    _issue(engine, hub, 3)
    with pytest.raises(RetryableError):
        hub.handle_send(Ctx(engine))  # the first send reached KSeF, its answer did not reach us
    assert {s for s, _ in _states(engine).values()} == {"sending"}
    result = hub.handle_send(Ctx(engine))  # the job again: the session is read back first
    assert result == {"sent": 2, "recovered": 1, "session": result["session"]}
    assert sorted(ksef.sends) == ["FV/1/12/2026", "FV/2/12/2026", "FV/3/12/2026"]  # each once
    _settle(hub, engine)
    assert {s for s, _ in _states(engine).values()} == {"accepted"}


def test_a_failed_send_is_sent_again_and_a_rejection_is_the_invoices_problem(engine: Engine) -> None:
    ksef = FakeKsef(fail_sends=1, reject={"FV/2/12/2026"})
    hub = service(settings(ksef="ksef"), ksef=ksef)
    ids = _issue(engine, hub, 2)
    with pytest.raises(RetryableError):
        hub.handle_send(Ctx(engine))
    assert hub.handle_send(Ctx(engine))["sent"] == 2 and ksef.sends == ["FV/1/12/2026", "FV/2/12/2026"]
    assert _settle(hub, engine) == {"accepted": 1, "rejected": 1}
    with transaction(engine) as session:
        rejected = session.get(Invoice, ids[1])
        assert rejected.state == "rejected" and rejected.ksef_code == 450 and "P_2: wrong" in rejected.problem


def test_a_duplicate_takes_the_first_sends_ksef_number(engine: Engine) -> None:
    ksef = FakeKsef()
    hub = service(settings(ksef="ksef"), ksef=ksef)
    (invoice_id,) = _issue(engine, hub, 1)
    hub.handle_send(Ctx(engine))
    _settle(hub, engine)
    first = _states(engine)[invoice_id][1]
    # a send whose record was lost beyond recovery (a restored backup): KSeF refuses the second copy
    with transaction(engine) as session:
        session.execute(update(Invoice).values(state="issued", ksef_number=None, ksef_session=None))
    hub.handle_send(Ctx(engine))
    _settle(hub, engine)
    assert _states(engine)[invoice_id] == ("accepted", first)


def test_a_correction_waits_for_its_originals_ksef_number(engine: Engine) -> None:
    from decimal import Decimal

    from hub.invoicing.amounts import LineIn

    ksef = FakeKsef()
    hub = service(settings(ksef="ksef"), ksef=ksef)
    (invoice_id,) = _issue(engine, hub, 1)
    correction = hub.correct(engine, invoice_id, "zwrot", [LineIn("Towar A", Decimal(-1), Decimal("100.00"), "23")],
                             origin="test:1", now=NOW).invoice
    assert correction.number == "FK/1/12/2026" and correction.gross == Decimal("-100.00")
    hub.handle_send(Ctx(engine))
    assert ksef.sends == ["FV/1/12/2026"]  # the correction waits
    _settle(hub, engine)
    hub.handle_send(Ctx(engine))
    assert ksef.sends == ["FV/1/12/2026", "FK/1/12/2026"]
    _settle(hub, engine)
    with transaction(engine) as session:
        stored = session.get(Invoice, correction.id)
        assert stored.state == "accepted"
        original = session.get(Invoice, invoice_id)
        # issued while the original waited for KSeF, the correction names the original's KSeF number once
        # it is known: its document was completed before it was sent (and sent with its new hash)
        assert "FV/1/12/2026" in stored.xml and original.ksef_number and original.ksef_number in stored.xml
        assert "<NrKSeFN>" not in stored.xml and problems(fa3(), stored.xml.encode()) == []


def test_a_second_sender_waits_for_the_running_one(engine: Engine) -> None:
    from datetime import timedelta

    from hub.jobs.models import Job
    from hub.kernel.clock import utcnow

    hub = service(settings(ksef="ksef"), ksef=FakeKsef())
    with transaction(engine) as session:
        session.add(Job(kind="invoicing.send", payload={}, idempotency_key="other", state="running",
                        lease_expires_at=utcnow() + timedelta(seconds=30), run_at=utcnow(), priority=0,
                        attempts=1, created_at=utcnow(), updated_at=utcnow()))
    me = ClaimedJob(99, "invoicing.send", {}, "mine", None, 1, None, 0, "t")
    with pytest.raises(Deferred, match="another KSeF sender"):
        hub.handle_send(Ctx(engine, job=me))


def test_a_cancelled_orders_invoice_is_corrected_to_nothing_once(engine: Engine) -> None:
    from decimal import Decimal

    from hub.invoicing.amounts import LineIn

    hub = service(settings(ksef="ksef"), ksef=FakeKsef())
    order_id = add_order(engine, "S1", [("A", 3, "10.00", "23", "goods"), (None, 1, "9.99", None, "shipping")])
    invoice = hub.issue_order(engine, order_id, now=NOW).invoice
    # a return of one unit came first
    hub.correct(engine, invoice.id, "zwrot", [LineIn("Towar A", Decimal(-1), Decimal("10.00"), "23", sku="A")],
                origin="return:1", now=NOW)
    cancel = Ctx(engine, payload={"order_id": order_id, "reason": "anulowanie zamówienia"})
    cancel.job = ClaimedJob(7, "invoicing.correct", cancel.payload, "invoice-cancel:shop/S1", None, 1, None, 0, "t")
    result = hub.handle_correct(cancel)
    assert result["invoice"] == "FK/2/12/2026" and result["created"]
    assert hub.handle_correct(cancel) == {"skipped": "nothing invoiced to correct"}  # the job again: nothing left
    with transaction(engine) as session:
        totals = session.execute(select(Invoice.gross).where(
            (Invoice.id == invoice.id) | (Invoice.corrects_id == invoice.id))).scalars().all()
    assert sum(totals, Decimal(0)) == Decimal("0.00")  # 39.99 - 10.00 - 29.99
    # an order cancelled before its invoice: nothing to correct, and no invoice is issued afterwards
    other = add_order(engine, "S2", [("A", 1, "10.00", "23", "goods")], status="cancelled")
    other_cancel = Ctx(engine, payload={"order_id": other})
    other_cancel.job = ClaimedJob(8, "invoicing.correct", other_cancel.payload, "invoice-cancel:shop/S2", None, 1,
                                  None, 0, "t")
    assert hub.handle_correct(other_cancel) == {"skipped": "nothing invoiced to correct"}
    issue = Ctx(engine, payload={"order_id": other})
    assert "cancelled" in hub.handle_issue(issue)["skipped"]
