"""Invoicing end to end through the job queue, on SQLite and PostgreSQL, against the KSeF and NBP simulators:
the shipped rule issues a business order's invoice, it is sent to KSeF and comes back with its KSeF number and
UPO; a euro order's VAT is stated in PLN at NBP's rate of the day before; an accepted return is corrected and
the correction sent after its original. And the crash test: a worker killed between KSeF's answer and our
commit, and the invoices are still in KSeF once each."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from connectors.ksef.crypto import crc8_hex
from connectors.ksef.simulator import DEFAULT_TOKEN, KsefSimulator
from connectors.nbp.simulator import NbpSimulator
from hub.app.wiring import build_handlers
from hub.invoicing.models import Invoice, KsefSession
from hub.jobs.models import Job
from hub.jobs.queue import enqueue
from hub.jobs.worker import WorkerPool
from hub.kernel.clock import utcnow
from hub.orders.models import ReturnRow
from hub.platform.config import load
from hub.platform.db import transaction
from tests.invoicing.support import add_order

HERE = Path(__file__).resolve().parent
ZONE_DAY = (datetime.now(UTC) + timedelta(hours=1)).date()  # the seller's calendar (Warsaw) today, near enough

CONFIG = """
[database]
url = "{url}"
[worker]
concurrency = 2
poll_interval = "20ms"
backoff_initial = "50ms"
backoff_max = "100ms"
[invoicing]
enabled = true
ksef = "ksef"
[invoicing.seller]
name = "Sklep Test sp. z o.o."
nip = "5260250274"
street = "ul. Magazynowa 5"
city = "Poznań"
postal_code = "60-001"
[connectors.ksef]
kind = "ksef"
rate_limit_per_minute = 60000  # the simulator's: the test does not wait for KSeF's production limits
nip = "5260250274"
token = "{token}"
api_url = "{ksef_url}"
[connectors.nbp]
kind = "nbp"
api_url = "{nbp_url}"
"""


def config(tmp_path: Path, url: str, ksef_url: str = "https://ksef.sim/v2", nbp_url: str = "https://nbp.sim/api"
           ) -> Any:
    path = tmp_path / "hub.toml"
    path.write_text(CONFIG.format(url=url, token=DEFAULT_TOKEN, ksef_url=ksef_url, nbp_url=nbp_url))
    return load(path, environ={})


def open_jobs(engine: Engine) -> int:
    with transaction(engine) as session:
        return int(session.execute(select(func.count()).select_from(Job).where(
            Job.state.in_(("pending", "running", "failed-retrying")))).scalar_one())


def quiet(engine: Engine, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while open_jobs(engine) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_jobs(engine) == 0


def invoices(engine: Engine) -> dict[str, Invoice]:
    with transaction(engine) as session:
        return {i.origin: i for i in session.execute(select(Invoice)).scalars()}


def test_invoices_go_to_ksef_and_come_back_numbered(db_url: str, engine: Engine, tmp_path: Path) -> None:
    ksef, nbp = KsefSimulator(), NbpSimulator(now=None)
    loaded = config(tmp_path, db_url)
    pool = WorkerPool(engine, build_handlers(loaded, transports={"ksef": ksef.transport(), "nbp": nbp.transport()}),
                      loaded.settings.worker, name="invoicing")
    pln = add_order(engine, "S1", [("A", 2, "123.00", "23", "goods"), (None, 1, "15.99", None, "shipping")])
    eur = add_order(engine, "S2", [("A", 1, "49.99", "23", "goods")], currency="EUR", country="DE",
                    nip="DE136695976")
    pool.start()
    try:
        with transaction(engine) as session:
            for order_id in (pln, eur):  # what the shipped rule's issue_invoice queues
                enqueue(session, "invoicing.issue", {"order_id": order_id}, key=f"invoice:{order_id}")
        quiet(engine)
        found = invoices(engine)
        first, euro = found[f"order:{pln}"], found[f"order:{eur}"]
        for invoice in (first, euro):
            assert invoice.state == "accepted", (invoice.state, invoice.problem)
            number = invoice.ksef_number or ""
            assert number.startswith("5260250274-") and crc8_hex(number[:32]) == number[-2:]
            assert invoice.upo and "Potwierdzenie" in invoice.upo
        # the euro invoice's VAT in PLN at the NBP rate of the last working day before the sale
        mid = euro.exchange_rate
        assert euro.exchange_rate_date is not None and euro.exchange_rate_date < euro.sale_date
        assert mid == nbp.rate("EUR", euro.exchange_rate_date)
        assert Decimal(euro.rates[0]["vat_pln"]) == (Decimal(euro.rates[0]["vat"]) * mid).quantize(Decimal("0.01"))
        assert euro.buyer["eu_code"] == "DE" and euro.buyer["eu_vat"] == "136695976"

        # an accepted return: a correction, sent after its original, numbered in its own series
        with transaction(engine) as session:
            session.add(ReturnRow(channel="shop", external_id="R1", order_id=pln, order_external_id="S1",
                                  status="accepted", lines=[{"sku": "A", "quantity": 1}], reason="uszkodzony",
                                  created_at=utcnow(), updated_at=utcnow()))
            session.flush()
            rid = session.execute(select(ReturnRow.id)).scalar_one()
            enqueue(session, "invoicing.correct", {"return_id": rid}, key="invoice-return:R1")
        quiet(engine)
        correction = invoices(engine)[f"return:{rid}"]
        assert correction.kind == "KOR" and correction.state == "accepted" and correction.gross == Decimal("-123.00")
        assert first.ksef_number in (correction.xml or "")  # it names the original's KSeF number
    finally:
        pool.stop()
    assert sorted(number for (number, _) in ksef.accepted.values()) == sorted(
        i.ksef_number for i in invoices(engine).values())  # each invoice in KSeF once


def test_a_worker_killed_between_ksefs_answer_and_our_commit_sends_each_invoice_once(
        db_url: str, engine: Engine, tmp_path: Path) -> None:
    ksef, nbp = KsefSimulator(), NbpSimulator(now=None)
    ksef_url, nbp_url = ksef.serve() + "/v2", nbp.serve()
    try:
        loaded = config(tmp_path, db_url, ksef_url, nbp_url)
        from hub.app.wiring import ProcessServices

        hub = ProcessServices(loaded).invoicing(engine)
        for n in range(5):
            order_id = add_order(engine, f"S{n}", [("A", 1, f"{100 + n}.00", "23", "goods")])
            hub.issue_order(engine, order_id)
        # a worker process sends them and dies right after KSeF answered the third send, before our commit
        run = subprocess.run([sys.executable, str(HERE.parent / "support" / "ksef_crash_proc.py"),
                              str(tmp_path / "hub.toml"), "3"], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": str(HERE.parents[1])})
        assert run.returncode == 9, run.stderr[-3000:]
        assert len(ksef.exchanges("POST", r"/sessions/online/[^/]+/invoices$")) == 3
        assert {i.state for i in invoices(engine).values()} == {"sending"}  # nothing of the answers committed

        # the job again, in this process: the dead run's session is read back by hash before anything is sent
        from tests.invoicing.test_ksef_sending import Ctx

        result = hub.handle_send(Ctx(engine))
        assert result["recovered"] == 3 and result["sent"] == 2
        for _ in range(20):
            try:
                hub.handle_status(Ctx(engine))
                break
            except Exception:
                time.sleep(0.05)
        assert {i.state for i in invoices(engine).values()} == {"accepted"}
        assert len(ksef.exchanges("POST", r"/sessions/online/[^/]+/invoices$")) == 5  # five sends for five
        assert len(ksef.accepted) == 5
        with transaction(engine) as session:
            assert session.execute(select(func.count()).select_from(KsefSession).where(
                KsefSession.state == "closed")).scalar_one() == 1  # the dead run's session, closed on recovery
    finally:
        ksef.stop()
        nbp.stop()


def test_a_backlog_goes_in_a_batch_session_and_survives_a_run_dying_before_the_upload(
        db_url: str, engine: Engine, tmp_path: Path) -> None:
    from hub.app.wiring import ProcessServices
    from hub.invoicing.service import BATCH_FROM
    from tests.invoicing.test_ksef_sending import Ctx

    ksef, nbp = KsefSimulator(), NbpSimulator(now=None)
    loaded = config(tmp_path, db_url)
    transports = {"ksef": ksef.transport(), "nbp": nbp.transport()}
    first = ProcessServices(loaded, transports).invoicing(engine)
    count = BATCH_FROM + 10
    for n in range(count):
        order_id = add_order(engine, f"S{n}", [("A", 1, f"{10 + n % 50}.00", "23", "goods")])
        first.issue_order(engine, order_id)

    class Killed(BaseException):
        """The process dies: nothing after this runs."""

    port = first.ksef()

    def die(_session: str) -> None:
        raise Killed

    port.finish_batch = die  # type: ignore[method-assign]
    with contextlib.suppress(Killed):
        first.handle_send(Ctx(engine))
    assert {i.state for i in invoices(engine).values()} == {"sending"}  # marked with the batch, never uploaded

    # another process: the batch's parts died with the first, KSeF never got them; they go again
    second = ProcessServices(loaded, transports).invoicing(engine)
    result = second.handle_send(Ctx(engine))
    assert result["sent"] == count
    with transaction(engine) as session:
        kinds = [(s.kind, s.invoices) for s in session.execute(select(KsefSession).order_by(KsefSession.opened_at))
                 .scalars()]
    assert kinds == [("batch", count), ("batch", count)]
    for _ in range(50):
        try:
            second.handle_status(Ctx(engine))
            break
        except Exception:
            time.sleep(0.05)
    found = invoices(engine)
    assert {i.state for i in found.values()} == {"accepted"}
    assert len(ksef.accepted) == count  # each once: the first batch was never closed, so nothing of it counted
    assert all(i.ksef_number and i.upo for i in found.values())
