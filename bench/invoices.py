"""Invoices: 10,000 invoices issued, validated against FA(3), sent to the KSeF simulator and exported, by two
`hub run` processes. Goal (issue 11): <= 60 s on 2 cores; the time of each step printed.

The setup (not timed): a throwaway PostgreSQL 15 (fsync off, as the suite's) or a SQLite file; the KSeF
simulator and the NBP simulator served on loopback by this process (real HTTP, no added latency unless
--latency; the simulator's own work, decrypting each invoice and checking it against FA(3), building the
UPOs, runs on the same 2 cores, which a real KSeF would not take from the hub); a config
with [invoicing] enabled, ksef = "ksef", the seller with its JPK address, both connectors with their rate
limits lifted (rate_limit_per_minute: the figure is the hub's own work, not KSeF's production quota of 30
sends a minute); and N paid business orders written in bulk (orders, lines and their 'paid' history in one
transaction): one to three goods lines at 23, 8 and 5 %, a courier line without a rate on nine in ten
(it follows its goods' rates), buyers with valid Polish NIPs, and one order in fifty in EUR to a German
buyer with an EU VAT number, so the NBP rate is read (once per currency and day).

Timed, with two `hub run` processes started and ready (READY=1 on NOTIFY_SOCKET, as they tell systemd):
1. "issue + validate": N `invoicing.issue` jobs (keyed by the order, as the shipped rule queues them) are
   enqueued in one transaction; the clock runs from its commit until every invoice is numbered with a
   schema-valid FA(3) document (state issued, sending, sent or accepted).
2. "send to KSeF": from the end of step 1 until every invoice is `accepted` with its KSeF number and UPO
   (the daemons' coalesced `invoicing.send` and `invoicing.ksef_status` jobs). Sending may begin while
   issuing still goes on (the first issued invoice queues a send job, behind the issue jobs waiting at the
   same priority): the bench prints when it began, whether it overlapped issuing, both steps and the wall
   time from the enqueue to the last acceptance (which is what counts for the goal, not the sum of the two
   steps). A hub process authenticates to KSeF at its first call (the simulator, like KSeF, answers the
   first status read of an authentication "in progress", and the client waits auth_poll_interval, 0.5 s):
   that is timed.
   Also printed: when each send and status job that did something ran, and what it returned.
3. "export": `hub.invoicing.exports.export` (what `hub invoices export` runs) for the month, in csv,
   jpk_fa and fa3, one after the other in this process while the daemons idle; each format's time.
   PDF is printed as an extra figure for a sample (--pdf-sample, 500), one file per invoice rendered
   and written as the pdf export does; it is not counted in the goal.

Checked: N invoices, numbered 1..N in their series and month with no gap and none twice, every one
accepted with a KSeF number whose CRC-8 checks; the KSeF simulator holds each invoice number exactly once
(accepted, with the KSeF number the hub recorded) and nothing else; the csv has a row per invoice with its
KSeF number, the JPK_FA file is valid against JPK_FA(4) and counts N invoices, there is one FA(3) file per
invoice with the SHA-256 the hub sent, and a sample (--fa3-sample, 200) of them is valid against FA(3).

The raw baseline, in the same run before the daemons start: for a sample (--sample, 200) of the same
orders, the bare work one order after the other in this process without the queue: the draft
(`issue.draft_for_order`, the NBP rate of a euro order read from the port, cached per day) and `issue.store`
(FA(3) rendered, checked, numbered) in a transaction that is rolled back (the series' counter set to the
sample's index in it first, so each has its own number), then the documents sent one by one through the
KSeF port into one session of a second KSeF simulator (authenticated and opened before the clock), then
the session read back until every verdict is in and each UPO fetched; seconds per invoice times N, against
the hub's time from the enqueue to the last acceptance. And the export's: the csv
module writing N plain rows as wide as the sales register.

Also printed: the machine (cores, load average before and after), how many send and status jobs ran,
KSeF sessions and requests, NBP requests.

Run: .venv/bin/python bench/invoices.py [--invoices 10000] [--backend postgresql|sqlite] [--processes 2]
     [--threads 4] [--batch-size 10] [--sample 200] [--pdf-sample 500] [--latency 0] [--timeout 900]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# bench/queue.py would shadow the standard library's queue module: run from the repo root instead
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from lxml import etree
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from connectors.ksef.crypto import crc8_hex
from connectors.ksef.simulator import DEFAULT_NIP, DEFAULT_TOKEN, KsefSimulator
from connectors.nbp.simulator import NbpSimulator
from hub.platform import db
from hub.platform.config import load
from hub.platform.logs import configure as configure_logging
from tests.support import pgtemp

GOAL_SECONDS = 60.0
ISSUED = ("issued", "sending", "sent", "accepted")  # numbered, its FA(3) valid
FINAL = ("accepted", "rejected", "problem", "outside_ksef")
GOAL_FORMATS = ("csv", "jpk_fa", "fa3")
# (SKU, name, VAT rate, unit gross)
GOODS = [("LAMP-01", "Lampka biurkowa LED", "23", "149.00"), ("KUB-02", "Kubek ceramiczny 350 ml", "23", "29.99"),
         ("KSI-03", "Książka: Lalka, B. Prus", "5", "39.90"), ("KAWA-04", "Kawa ziarnista 1 kg", "5", "74.50"),
         ("KWI-05", "Bukiet kwiatów ciętych", "8", "89.00"), ("NAS-06", "Nasiona pomidora", "8", "7.49")]
SHIPPING = "14.99"
EU_BUYER_VAT = "DE136695976"  # a valid German VAT number (the suite's)
NIP_PREFIXES = ("526", "774", "951", "779", "113")  # FA(3)'s TNrNIP: no 0 in the 2nd and 3rd place at once

SELLER = """[invoicing.seller]
name = "Sklep Bench sp. z o.o."
nip = "{nip}"
street = "ul. Magazynowa"
building = "5"
city = "Poznań"
postal_code = "60-001"
email = "faktury@example.pl"
bank_account = "PL61109010140000071219812874"
place = "Poznań"
tax_office = "3021"
voivodeship = "wielkopolskie"
county = "Poznań"
commune = "Poznań"
"""


def nip(i: int) -> str:
    """A valid Polish NIP, different per buyer: a tax office's prefix, six digits, the check digit."""
    weights = (6, 5, 7, 2, 3, 4, 5, 6, 7)
    for bump in range(20):
        head = NIP_PREFIXES[i % len(NIP_PREFIXES)] + f"{(i * 7919 + bump) % 1_000_000:06d}"
        check = sum(w * int(d) for w, d in zip(weights, head, strict=True)) % 11
        if check < 10:
            return head + str(check)
    raise AssertionError("unreachable")


def write_config(path: Path, url: str, ksef_url: str, nbp_url: str, threads: int, batch: int) -> Path:
    path.write_text(f"""[database]
url = "{url}"
pool_size = {threads + 4}
[worker]
concurrency = {threads}
batch_size = {batch}
poll_interval = "50ms"
lease = "60s"
backoff_initial = "200ms"
backoff_max = "2s"
[scheduler]
enabled = false
[log]
level = "warning"
format = "json"
[invoicing]
enabled = true
ksef = "ksef"
rates = "nbp"
{SELLER.format(nip=DEFAULT_NIP)}
[connectors.ksef]
kind = "ksef"
rate_limit_per_minute = 1000000
rate_limit_burst = 1000
nip = "{DEFAULT_NIP}"
token = "{DEFAULT_TOKEN}"
api_url = "{ksef_url}"
[connectors.nbp]
kind = "nbp"
rate_limit_per_minute = 1000000
rate_limit_burst = 1000
api_url = "{nbp_url}"
""", encoding="utf-8")
    return path


def seed(engine: Any, count: int) -> dict[int, int]:
    """N paid business orders with their lines and 'paid' history, in bulk: {order id: index}."""
    from hub.orders.models import Order, OrderHistory, OrderLineRow

    now = datetime.now(UTC)
    paid_at = now - timedelta(minutes=30)
    orders: list[dict[str, Any]] = []
    lines: dict[str, list[dict[str, Any]]] = {}
    for i in range(count):
        external_id = f"B{i:06d}"
        euro = i % 50 == 7
        country = "DE" if euro else "PL"
        address = {"name": f"Jan Kowalski {i}", "street": f"ul. Polna {1 + i % 90}", "city": "Warszawa",
                   "postal_code": "00-001", "country": country}
        rows = []
        for n in range(1 + i % 3):
            sku, name, rate, price = GOODS[(i + 2 * n) % len(GOODS)]
            rows.append({"line_no": n + 1, "line_id": f"{external_id}-{n + 1}", "sku": sku, "name": name,
                         "quantity": 1 + (i + n) % 4 // 3, "unit_price_gross": Decimal(price), "vat_rate": rate,
                         "kind": "goods"})
        if i % 10:
            rows.append({"line_no": len(rows) + 1, "line_id": f"{external_id}-d", "sku": None,
                         "name": "Dostawa kurierem", "quantity": 1, "unit_price_gross": Decimal(SHIPPING),
                         "vat_rate": None, "kind": "shipping"})
        total = sum((row["unit_price_gross"] * row["quantity"] for row in rows), Decimal("0.00"))
        currency = "EUR" if euro else "PLN"
        if euro:
            for row in rows:  # euro prices of the same size
                row["unit_price_gross"] = (row["unit_price_gross"] / 4).quantize(Decimal("0.01"))
            total = sum((row["unit_price_gross"] * row["quantity"] for row in rows), Decimal("0.00"))
        lines[external_id] = rows
        orders.append({
            "channel": "shop", "external_id": external_id, "revision": "r1", "status": "processing",
            "channel_status": "READY", "oversold": False, "buyer_email": f"zakupy{i}@example.pl",
            "buyer_login": f"firma{i}", "delivery_method": "courier", "delivery": {"address": address},
            "payment": {"status": "paid", "amount": str(total), "currency": currency, "method": "online",
                        "cash_on_delivery": False},
            "invoice": {"company": f"Firma Kupująca {i} Sp. z o.o.", "nip": EU_BUYER_VAT if euro else nip(i),
                        "address": address},
            "currency": currency, "total_gross": total, "tags": [], "placed_at": paid_at,
            "channel_updated_at": paid_at, "created_at": paid_at, "updated_at": paid_at})
    with db.transaction(engine) as session:
        session.execute(insert(Order), orders)
        ids = dict(session.execute(select(Order.external_id, Order.id)).all())
        session.execute(insert(OrderLineRow), [{"order_id": ids[external_id], **row}
                                               for external_id, rows in lines.items() for row in rows])
        session.execute(insert(OrderHistory), [
            {"order_id": order_id, "from_status": "new", "to_status": "paid", "source": "channel", "at": paid_at}
            for order_id in ids.values()])
    return {order_id: int(external_id[1:]) for external_id, order_id in ids.items()}


def enqueue_issues(engine: Any, orders: list[tuple[int, int]]) -> None:
    """The jobs the shipped rule's issue_invoice queues (keyed by the order), N of them in one transaction."""
    from hub.jobs.queue import NewJob, enqueue_many
    from hub.orders.kinds import ISSUE_INVOICE

    with db.transaction(engine) as session:
        jobs = [NewJob(ISSUE_INVOICE, {"order_id": order_id}, f"invoice:shop/B{index:06d}")
                for order_id, index in orders]
        assert enqueue_many(session, jobs) == len(jobs)


def baseline(loaded: Any, engine: Any, order_ids: list[int]) -> dict[str, float]:
    """The bare work one order after the other, no queue: seconds per invoice for issuing (draft, rate,
    store, in a rolled-back transaction), sending (one POST each through the port), and reading the
    verdicts and UPOs back."""
    from hub.app.wiring import ProcessServices
    from hub.invoicing.issue import draft_for_order, local_day, store
    from hub.invoicing.numbering import period_of
    from hub.kernel.ports.invoicing import OutgoingInvoice
    from hub.orders.models import Order

    services = ProcessServices(loaded)
    invoicing = services.invoicing(engine)
    settings = loaded.settings.invoicing
    pattern = settings.series[settings.invoice_series].pattern
    ksef, rates = invoicing.ksef(), invoicing.rates_source()
    known_rates: dict[tuple[str, date], Any] = {}
    documents: list[tuple[str, bytes, str]] = []
    issuing = 0.0
    for n, order_id in enumerate(order_ids):
        with Session(engine, expire_on_commit=False) as session:
            session.begin()
            period = period_of(pattern, local_day(datetime.now(UTC), settings))
            session.execute(text("INSERT INTO invoice_counters (series, period, last_seq) VALUES (:s, :p, :k)"),
                            {"s": settings.invoice_series, "p": period, "k": n})  # its own number: see above
            start = time.perf_counter()
            now = datetime.now(UTC)
            order = session.get(Order, order_id)
            assert order is not None
            draft = draft_for_order(session, settings, invoicing.goods, order, now=now)
            if draft.currency != "PLN":
                key = (draft.currency, draft.sale_date)
                if key not in known_rates:
                    known_rates[key] = rates.rate_before(draft.currency, draft.sale_date)
                draft = replace(draft, exchange=known_rates[key])
            issued = store(session, settings, draft, now=now, send=True)
            invoice = issued.invoice
            assert invoice.state == "issued", invoice.problem
            documents.append((invoice.number or "", (invoice.xml or "").encode("utf-8"), invoice.xml_sha256 or ""))
            session.flush()
            issuing += time.perf_counter() - start
            session.rollback()
    session_ref = ksef.open_session()  # with the authentication: once per process, not per invoice
    start = time.perf_counter()
    references = [ksef.send(session_ref, OutgoingInvoice(number, xml, digest)) for number, xml, digest in documents]
    sending = time.perf_counter() - start
    start = time.perf_counter()
    verdicts: dict[str, Any] = {}
    for _ in range(100):
        verdicts = {sent.reference: sent for sent in ksef.find_sent(session_ref) if sent.status != "processing"}
        if len(verdicts) >= len(references):
            break
    accepted = 0
    for reference in references:
        sent = verdicts.get(reference)
        if sent is not None and sent.status == "accepted":
            ksef.upo(session_ref, reference)
            accepted += 1
    status = time.perf_counter() - start
    assert accepted == len(order_ids), f"baseline: {accepted} of {len(order_ids)} accepted"
    ksef.close_session(session_ref)
    services.sync(engine).connectors.close()
    count = len(order_ids)
    return {"issue": issuing / count, "send": sending / count, "status": status / count}


def csv_baseline(path: Path, count: int, width: int) -> float:
    """The csv module writing ``count`` plain rows of ``width`` short fields: seconds."""
    row = [f"pole{i}" for i in range(width)]
    start = time.perf_counter()
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        for n in range(count):
            row[0] = f"FV/{n}/01/2026"
            writer.writerow(row)
    return time.perf_counter() - start


def wait_ready(notify: socket.socket, count: int, timeout: float = 60) -> None:
    """Until ``count`` processes have told the notify socket READY=1, as they tell systemd."""
    notify.settimeout(timeout)
    ready = 0
    while ready < count:
        if b"READY=1" in notify.recv(4096):
            ready += 1


class Watch:
    """The invoices' states, polled: when each share was issued and accepted, when sending began."""

    SHARES = (0.1, 0.5, 0.9, 0.99, 1.0)

    def __init__(self, engine: Any, count: int, start: float):
        self.engine, self.count, self.start = engine, count, start
        self.issued_at: dict[float, float | None] = dict.fromkeys(self.SHARES)
        self.accepted_at: dict[float, float | None] = dict.fromkeys(self.SHARES)
        self.sending_began: float | None = None
        self.states: Counter[str] = Counter()

    def poll(self) -> bool:
        """One look; True when every invoice has reached a final state."""
        from hub.invoicing.models import Invoice

        with db.transaction(self.engine) as session:
            self.states = Counter(dict(session.execute(select(Invoice.state, func.count())
                                                       .group_by(Invoice.state)).all()))
        at = time.monotonic() - self.start
        issued = sum(self.states.get(state, 0) for state in ISSUED)
        accepted = self.states.get("accepted", 0)
        if self.sending_began is None and issued - self.states.get("issued", 0) > 0:
            self.sending_began = at
        for marks, done in ((self.issued_at, issued), (self.accepted_at, accepted)):
            for share, seen in marks.items():
                if seen is None and done >= share * self.count:
                    marks[share] = at
        return sum(self.states.get(state, 0) for state in FINAL) >= self.count


class Traffic:
    """The KSeF simulator's requests by kind, drained from its log as the run goes (the log keeps every
    request and answer: thousands of encrypted invoices and session listings)."""

    KINDS = (("send", "POST", re.compile(r"^/sessions/online/[^/]+/invoices$")),
             ("listing", "GET", re.compile(r"^/sessions/[^/]+/invoices$")),
             ("upo", "GET", re.compile(r"/upo$")))

    def __init__(self, sim: KsefSimulator):
        self.sim = sim
        self.counts: Counter[str] = Counter()

    def drain(self) -> None:
        with self.sim._lock:
            drained, self.sim.log = self.sim.log, []
        for exchange in drained:
            kind = next((name for name, method, path in self.KINDS
                         if exchange.method == method and path.search(exchange.path)), "other")
            self.counts[kind] += 1


def job_summary(engine: Any) -> dict[str, Counter[str]]:
    from hub.jobs.models import Job

    out: dict[str, Counter[str]] = {}
    with db.transaction(engine) as session:
        for kind, state, count in session.execute(select(Job.kind, Job.state, func.count())
                                                  .group_by(Job.kind, Job.state)).all():
            out.setdefault(kind, Counter())[state] = count
    return out


def job_runs(engine: Any, kind: str, since: datetime) -> str:
    """The runs of ``kind`` that did something: when each began (seconds after ``since``), how long its last
    attempt took, what it returned; and how many did nothing."""
    from hub.jobs.models import Job

    with db.transaction(engine) as session:
        rows = session.execute(select(Job.started_at, Job.finished_at, Job.result).where(Job.kind == kind)
                               .order_by(Job.started_at)).all()
    worked = [r for r in rows if r.result and any(isinstance(v, int) and v for v in r.result.values())]
    shown = [f"+{(r.started_at - since).total_seconds():.1f} s for {(r.finished_at - r.started_at).total_seconds():.1f}"
             f" s {r.result}" for r in worked[:8] if r.started_at is not None and r.finished_at is not None]
    more = f" (+{len(worked) - 8} more)" if len(worked) > 8 else ""
    return f"{len(rows)} job(s), {len(rows) - len(worked)} with nothing to do; " + "; ".join(shown) + more


def last_issues(engine: Any, since: datetime, count: int = 3) -> str:
    """The invoicing.issue jobs that finished last: when each finished and began (seconds after ``since``),
    its attempts and last error (what the tail of issuing waited for)."""
    from hub.jobs.models import Job

    with db.transaction(engine) as session:
        rows = session.execute(select(Job.id, Job.started_at, Job.finished_at, Job.attempts, Job.last_error)
                               .where(Job.kind == "invoicing.issue", Job.finished_at.is_not(None))
                               .order_by(Job.finished_at.desc()).limit(count)).all()
    return "; ".join(f"job {r.id} done +{(r.finished_at - since).total_seconds():.1f} s (began +"
                     f"{(r.started_at - since).total_seconds():.1f} s, {r.attempts} attempt(s)"
                     + (f", last error {r.last_error[:120]!r}" if r.last_error else "") + ")" for r in rows)


def check(engine: Any, settings: Any, sim: KsefSimulator, count: int) -> tuple[list[str], dict[str, Any]]:
    """The invoices, their numbers and KSeF numbers, and what the simulator holds: (problems, facts)."""
    from hub.invoicing.models import Invoice
    from hub.invoicing.numbering import format_number

    problems: list[str] = []
    with db.transaction(engine) as session:
        rows = session.execute(select(Invoice.id, Invoice.series, Invoice.period, Invoice.seq, Invoice.number,
                                      Invoice.issue_date, Invoice.state, Invoice.ksef_number, Invoice.problem,
                                      Invoice.upo.is_not(None).label("has_upo"), Invoice.xml_sha256,
                                      Invoice.currency)).all()
    if len(rows) != count:
        problems.append(f"{len(rows)} invoices for {count} orders")
    not_accepted = [r for r in rows if r.state != "accepted"]
    if not_accepted:
        problems.append(f"{len(not_accepted)} not accepted, e.g. " + "; ".join(
            f"{r.number or r.id} {r.state}: {(r.problem or '')[:200]}" for r in not_accepted[:3]))
    by_period: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        if r.seq is not None:
            by_period.setdefault((r.series, r.period), []).append(r.seq)
    for (series, period), seqs in sorted(by_period.items()):
        if sorted(seqs) != list(range(1, len(seqs) + 1)):
            twice = sum(n - 1 for n in Counter(seqs).values() if n > 1)
            problems.append(f"{series} {period}: numbers not 1..{len(seqs)} ({twice} twice, max {max(seqs)})")
    wrong = [r.number for r in rows if r.seq is not None and r.issue_date is not None
             and r.number != format_number(settings.series[r.series].pattern, r.seq, r.issue_date)]
    if wrong:
        problems.append(f"{len(wrong)} numbers not as the pattern makes them, e.g. {wrong[:3]}")
    if len({r.number for r in rows}) != len(rows):
        problems.append("an invoice number is held twice")
    bad_crc = [r.ksef_number for r in rows if r.ksef_number and crc8_hex(r.ksef_number[:32]) != r.ksef_number[-2:]]
    if bad_crc:
        problems.append(f"{len(bad_crc)} KSeF numbers whose CRC-8 does not check, e.g. {bad_crc[:3]}")
    if any(r.state == "accepted" and not r.has_upo for r in rows):
        problems.append("an accepted invoice without its UPO")
    # the simulator: each invoice number accepted once, under the KSeF number the hub recorded
    sim_invoices = [i for s in list(sim.sessions.values()) for i in list(s.invoices)]
    accepted_in_sim = Counter(i.invoice_number for i in sim_invoices if i.code == 200)
    ours = {r.number: r.ksef_number for r in rows}
    twice = [n for n, c in accepted_in_sim.items() if c > 1]
    missing = [n for n in ours if accepted_in_sim.get(n, 0) == 0]
    extra = [n for n in accepted_in_sim if n not in ours]
    if twice or missing or extra:
        problems.append(f"KSeF simulator: {len(twice)} numbers accepted twice, {len(missing)} missing, "
                        f"{len(extra)} it has and the hub does not")
    if len(sim_invoices) != count:
        problems.append(f"KSeF simulator: {len(sim_invoices)} invoices received for {count} "
                        f"({sum(i.code == 440 for i in sim_invoices)} refused as duplicates)")
    mismatched = [n for (_, _, n), (number, _) in sim.accepted.items() if ours.get(n) not in (None, number)]
    if mismatched:
        problems.append(f"{len(mismatched)} KSeF numbers differ from the simulator's, e.g. {mismatched[:3]}")
    facts = {"rows": rows, "sim_sends": len(sim_invoices), "duplicates_440": sum(i.code == 440 for i in sim_invoices),
             "eur": sum(r.currency == "EUR" for r in rows), "periods": sorted({p for _, p in by_period})}
    return problems, facts


def check_exports(files: dict[str, list[Path]], rows: list[Any], fa3_sample: int) -> list[str]:
    from hub.invoicing.issue import sha256_b64
    from hub.invoicing.schemas import fa3, jpk_fa4
    from hub.invoicing.schemas import problems as schema_problems

    problems: list[str] = []
    ksef_of = {r.number: r.ksef_number for r in rows}
    digest_of = {r.number: r.xml_sha256 for r in rows}
    register: dict[str, str] = {}
    for path in files["csv"]:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            number_col, ksef_col = header.index("number"), header.index("ksef_number")
            register.update((row[number_col], row[ksef_col]) for row in reader)
    if register != ksef_of:
        problems.append(f"csv: {len(register)} rows; {sum(register.get(n) != k for n, k in ksef_of.items())} "
                        "invoices missing or without their KSeF number")
    jpk_count = 0
    for path in files["jpk_fa"]:
        document = etree.parse(str(path))
        found = schema_problems(jpk_fa4(), document.getroot())
        if found:
            problems.append(f"{path.name}: not valid against JPK_FA(4): {found[:2]}")
        jpk_count += int(document.getroot().findtext("{*}FakturaCtrl/{*}LiczbaFaktur") or 0)
    if jpk_count != len(rows):
        problems.append(f"JPK_FA counts {jpk_count} invoices, not {len(rows)}")
    fa3_files = files["fa3"]
    by_name = {path.stem: path for path in fa3_files}
    if len(fa3_files) != len(rows):
        problems.append(f"{len(fa3_files)} FA(3) files for {len(rows)} invoices")
    from hub.invoicing.exports import file_name

    differ = 0
    for number, digest in digest_of.items():
        path = by_name.get(file_name(number or "", ""))
        if path is None or sha256_b64(path.read_bytes()) != digest:
            differ += 1
    if differ:
        problems.append(f"{differ} FA(3) files missing or not the document the hub sent")
    for path in random.Random(11).sample(fa3_files, min(fa3_sample, len(fa3_files))):
        found = schema_problems(fa3(), path.read_bytes())
        if found:
            problems.append(f"{path.name}: not valid against FA(3): {found[:2]}")
            break
    return problems


def pdf_sample(engine: Any, period: str, out: Path, sample: int) -> tuple[int, float]:
    """The first ``sample`` invoices of the month as the pdf export makes them: (files, seconds)."""
    from hub.invoicing.exports import _Atomic, file_name, month, pages
    from hub.invoicing.pdf import render_pdf

    out.mkdir(parents=True, exist_ok=True)
    first, last = month(period)
    written = 0
    start = time.perf_counter()
    for page in pages(engine, first, last):
        for invoice, lines in page:
            with _Atomic(out / file_name(invoice.number or "", ".pdf")) as handle:
                handle.write(render_pdf(invoice, lines))
            written += 1
            if written >= sample:
                return written, time.perf_counter() - start
    return written, time.perf_counter() - start


def _marks(marks: dict[float, float | None]) -> str:
    return ", ".join(f"{share:.0%} at {at:.1f} s" for share, at in marks.items() if at is not None)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--processes", type=int, default=2, help="hub run processes")
    parser.add_argument("--threads", type=int, default=4, help="worker threads per hub process")
    parser.add_argument("--batch-size", type=int, default=10, help="jobs a worker thread claims at once")
    parser.add_argument("--sample", type=int, default=200, help="orders in the raw baseline")
    parser.add_argument("--pdf-sample", type=int, default=500, help="invoices rendered as PDF (extra figure)")
    parser.add_argument("--fa3-sample", type=int, default=200, help="exported FA(3) files checked against FA(3)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every simulator answer")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for every acceptance")
    parser.add_argument("--profile", action="store_true", help="run the hub processes under cProfile (work dir)")
    args = parser.parse_args()
    count = args.invoices
    sample = min(args.sample, count)

    from hub.invoicing.exports import export, register_header
    from hub.invoicing.models import Invoice

    base = Path(tempfile.mkdtemp(prefix="hub-invoices-"))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load_before = os.getloadavg()
    print(f"machine: {cores} cores available ({os.cpu_count()} online), load average "
          f"{' '.join(f'{x:.2f}' for x in load_before)}; backend {args.backend}")
    server = pgtemp.start() if args.backend == "postgresql" else None
    ksef, ksef_baseline, nbp = KsefSimulator(), KsefSimulator(), NbpSimulator(now=None)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        ksef_url = ksef.serve(latency=args.latency) + "/v2"
        baseline_url = ksef_baseline.serve(latency=args.latency) + "/v2"
        nbp_url = nbp.serve(latency=args.latency)
        url = server.create_database("invoices") if server is not None else f"sqlite:///{base / 'hub.db'}"
        config = write_config(base / "hub.toml", url, ksef_url, nbp_url, args.threads, args.batch_size)
        baseline_config = write_config(base / "baseline.toml", url, baseline_url, nbp_url, args.threads,
                                       args.batch_size)
        loaded = load(config, environ={})
        configure_logging(loaded.settings.log, stream=(base / "bench.log").open("w"))
        engine = db.make_engine(loaded.settings.database)
        db.upgrade(engine)
        seeding = time.monotonic()
        ids = seed(engine, count)
        order_ids = sorted(ids.items())
        euro = sum(1 for _, index in order_ids if index % 50 == 7)
        print(f"{count} paid business orders written in {time.monotonic() - seeding:.1f} s ({euro} in EUR); KSeF "
              f"and NBP simulators on loopback ({args.latency * 1000:.0f} ms added per request)")

        print(f"raw baseline: {sample} of the orders issued, sent and read back one after the other ...")
        sampled = [order_id for order_id, _ in random.Random(7).sample(order_ids, sample)]
        per = baseline(load(baseline_config, environ={}), engine, sampled)
        per_invoice = sum(per.values())
        nbp_before = len(nbp.requests())

        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(base / "notify.sock"))
        env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "NOTIFY_SOCKET": str(base / "notify.sock")}
        for n in range(args.processes):
            log = (base / f"hub-{n}.log").open("wb")
            profile = ["-m", "cProfile", "-o", str(base / f"hub-{n}.prof")] if args.profile else []
            procs.append(subprocess.Popen([sys.executable, *profile, "-m", "hub", "--config", str(config), "run"],
                                          stdout=log, stderr=log, cwd=base, env=env))
        wait_ready(notify, len(procs))
        print(f"{args.processes} hub processes ready (systemd READY=1), {args.threads} worker threads each, batches "
              f"of {args.batch_size}; {count} invoicing.issue jobs enqueued in one transaction")

        enqueue_issues(engine, order_ids)
        start = time.monotonic()  # from the commit of the jobs
        enqueued_at = datetime.now(UTC)
        watch = Watch(engine, count, start)
        traffic = Traffic(ksef)
        done = False
        polls = 0
        while time.monotonic() - start < args.timeout:
            done = watch.poll()
            if done:
                break
            polls += 1
            if polls % 20 == 0:
                traffic.drain()
            if any(proc.poll() is not None for proc in procs):
                print("a hub process exited: " + ", ".join(f"pid {p.pid} rc {p.returncode}" for p in procs))
                break
            time.sleep(0.1)
        issue_s = watch.issued_at[1.0]
        accept_s = watch.accepted_at[1.0]
        if not done or issue_s is None or accept_s is None:
            print(f"NOT DONE after {time.monotonic() - start:.0f} s: invoices by state {dict(watch.states)}; "
                  f"jobs {job_summary(engine)}")
            with db.transaction(engine) as session:
                for number, state, problem in session.execute(
                        select(Invoice.number, Invoice.state, Invoice.problem)
                        .where(Invoice.state.in_(("problem", "rejected"))).limit(3)).all():
                    print(f"  {number} {state}: {problem}")
            print(f"work dir: {base}")
            return 1

        exports = base / "export"
        with db.transaction(engine) as session:
            periods = sorted({f"{d:%Y-%m}" for d in session.execute(select(Invoice.issue_date).distinct()).scalars()
                              if d is not None})
        export_s: dict[str, float] = {}
        files: dict[str, list[Path]] = {}
        for fmt in GOAL_FORMATS:
            clock = time.perf_counter()
            for period in periods:
                result = export(engine, loaded.settings.invoicing, period, fmt, exports / fmt)  # type: ignore[arg-type]
                files.setdefault(fmt, []).extend(result.files)
            export_s[fmt] = time.perf_counter() - clock
        pdf_count, pdf_s = pdf_sample(engine, periods[0], exports / "pdf", min(args.pdf_sample, count))
        jobs = job_summary(engine)
        _stop(procs)
        load_after = os.getloadavg()

        problems, facts = check(engine, loaded.settings.invoicing, ksef, count)
        problems += check_exports(files, facts["rows"], args.fa3_sample)
        raw_csv = csv_baseline(base / "raw.csv", count, len(register_header()))

        exporting = sum(export_s.values())
        total = accept_s + exporting
        one_at_a_time = per_invoice * count
        began = watch.sending_began if watch.sending_began is not None else accept_s
        overlap = (f"{issue_s - began:.1f} s before the last invoice was issued" if began < issue_s
                   else f"{began - issue_s:.1f} s after the last invoice was issued (no overlap)")
        print()
        print(f"1. issue + validate: {count} invoices numbered with a valid FA(3) in {issue_s:.1f} s "
              f"({count / issue_s:.0f}/s); issued {_marks(watch.issued_at)}")
        print(f"2. send to KSeF: every invoice accepted with its KSeF number and UPO {accept_s - issue_s:.1f} s after "
              f"that, {accept_s:.1f} s from the enqueue; sending began at {began:.1f} s, {overlap}, so "
              f"{count / max(accept_s - began, 1e-9):.0f} invoices/s from the first send to the last acceptance; "
              f"accepted {_marks(watch.accepted_at)}")
        print("3. export (" + ", ".join(periods) + "): " + ", ".join(f"{fmt} {export_s[fmt]:.1f} s" for fmt in
                                                                    GOAL_FORMATS)
              + f" = {exporting:.1f} s; extra, not in the goal: pdf {pdf_count} invoices in {pdf_s:.1f} s "
              f"({pdf_s / max(pdf_count, 1) * 1000:.1f} ms each, ~{pdf_s / max(pdf_count, 1) * count:.0f} s for "
              f"{count})")
        print(f"total: enqueue to all accepted {accept_s:.1f} s (steps 1 and 2"
              f"{', overlapping' if began < issue_s else ''}) + exports {exporting:.1f} s = {total:.1f} s")
        print(f"raw baseline ({sample} orders, one at a time, no queue): issue {per['issue'] * 1000:.1f} ms, send "
              f"{per['send'] * 1000:.1f} ms, verdict + UPO {per['status'] * 1000:.1f} ms per invoice -> "
              f"{one_at_a_time:.1f} s for {count} (issue {per['issue'] * count:.1f} s, send "
              f"{per['send'] * count:.1f} s); the hub took {accept_s:.1f} s from the enqueue to all accepted: "
              + (f"{ratio:.1f}x faster" if (ratio := one_at_a_time / accept_s) >= 1 else f"{1 / ratio:.1f}x slower"))
        print(f"raw csv: the csv module writes {count} plain rows of {len(register_header())} fields in "
              f"{raw_csv:.2f} s; the sales register took {export_s['csv']:.2f} s "
              f"({export_s['csv'] / max(raw_csv, 1e-9):.0f}x)")
        traffic.drain()
        sizes = sorted(len(s.invoices) for s in ksef.sessions.values())
        print(f"KSeF: {len(sizes)} session(s) holding {sizes} invoices, {traffic.counts['send']} sends, "
              f"{facts['duplicates_440']} duplicates (440), {traffic.counts['listing']} session listing pages, "
              f"{traffic.counts['upo']} UPO reads, {sum(traffic.counts.values())} requests in all; NBP: "
              f"{len(nbp.requests()) - nbp_before} requests for {facts['eur']} euro invoices")
        print("jobs: " + "; ".join(f"{kind} {dict(states)}" for kind, states in sorted(jobs.items())))
        print(f"last issue jobs: {last_issues(engine, enqueued_at)}")
        print(f"send runs: {job_runs(engine, 'invoicing.send', enqueued_at)}")
        print(f"status runs: {job_runs(engine, 'invoicing.ksef_status', enqueued_at)}")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in load_after)}")
        print("checks: " + ("all passed (numbers 1..N without a gap, each in KSeF once with a valid KSeF number, "
                            "csv, JPK_FA(4), FA(3) files)" if not problems else "FAILED: " + " | ".join(problems)))
        print(f"work dir: {base}")
        goal = total <= GOAL_SECONDS and not problems
        print(f"goal (issue + send + export csv, jpk_fa, fa3 <= {GOAL_SECONDS:.0f} s on 2 cores, every check): "
              f"{'met' if goal else 'MISSED'} ({total:.1f} s)")
        engine.dispose()
        return 0 if goal else 1
    finally:
        _stop(procs)
        for sim in (ksef, ksef_baseline, nbp):
            sim.stop()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
