"""Issuing an order's invoice, on SQLite and PostgreSQL: once per order, numbered without gaps, its FA(3)
valid against the Ministry's schema, its amounts what the buyer paid; a problem stored on the invoice
without burning a number; a consumer's invoice only on request; a foreign currency with the NBP rate."""

from __future__ import annotations

from decimal import Decimal

import pytest
from lxml import etree
from sqlalchemy import Engine, func, select

from hub.invoicing.issue import InvoiceProblem
from hub.invoicing.models import ExchangeRate, Invoice, InvoiceCounter, InvoiceLine
from hub.invoicing.schemas import FA3_NS, fa3, problems
from hub.platform.db import transaction
from tests.invoicing.support import NOW, FakeRates, add_order, service, settings

NS = {"fa": FA3_NS}


def _xml(invoice: Invoice) -> etree._Element:
    assert invoice.xml is not None
    return etree.fromstring(invoice.xml.encode())


def _text(root: etree._Element, path: str) -> str | None:
    found = root.find(path, NS)
    return None if found is None else found.text


def test_a_business_order_gets_one_valid_numbered_invoice_with_its_delivery(engine: Engine) -> None:
    order_id = add_order(engine, "S1", [("A", 2, "123.00", "23", "goods"), ("B", 1, "10.80", "8", "goods"),
                                        (None, 1, "15.99", None, "shipping")])
    hub = service()
    issued = hub.issue_order(engine, order_id, now=NOW)
    invoice = issued.invoice
    assert issued.created and invoice.state == "outside_ksef"  # no KSeF connector configured
    assert invoice.number == "FV/1/12/2026" and invoice.issue_date.isoformat() == "2026-12-02"
    assert problems(fa3(), invoice.xml.encode()) == []
    # the buyer's total is exactly what was paid; VAT from each rate's gross sum
    assert invoice.gross == Decimal("272.79")
    rates = {r["rate"]: r for r in invoice.rates}
    # the delivery follows the goods' rates in proportion to their gross (246.00 : 10.80)
    assert set(rates) == {"23", "8"}
    assert sum(Decimal(r["gross"]) for r in rates.values()) == Decimal("272.79")
    root = _xml(invoice)
    assert _text(root, "fa:Podmiot2/fa:DaneIdentyfikacyjne/fa:NIP") == "7740001454"
    assert _text(root, "fa:Fa/fa:P_15") == "272.79"
    assert _text(root, "fa:Fa/fa:P_13_1") == rates["23"]["net"] and _text(root, "fa:Fa/fa:P_14_1") == rates["23"]["vat"]
    assert _text(root, "fa:Fa/fa:Platnosc/fa:Zaplacono") == "1"
    with transaction(engine) as session:
        lines = session.execute(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)).scalars().all()
    assert [line.kind for line in lines] == ["goods", "goods", "shipping", "shipping"]

    again = hub.issue_order(engine, order_id, now=NOW)  # a rule firing twice, a retried job
    assert not again.created and again.invoice.id == invoice.id
    with transaction(engine) as session:
        assert session.execute(select(func.count()).select_from(Invoice)).scalar_one() == 1
        assert session.get(InvoiceCounter, ("FV", "2026-12")).last_seq == 1


def test_a_problem_is_stored_on_the_invoice_and_burns_no_number(engine: Engine) -> None:
    bad = add_order(engine, "S1", [("A", 1, "100.00", "23", "goods")], nip="1234567890")
    good = add_order(engine, "S2", [("A", 1, "100.00", "23", "goods")])
    hub = service()
    with pytest.raises(InvoiceProblem, match="NIP '1234567890'"):
        hub.issue_order(engine, bad, now=NOW)
    assert hub.issue_order(engine, good, now=NOW).invoice.number == "FV/1/12/2026"
    with transaction(engine) as session:
        problem = session.execute(select(Invoice).where(Invoice.origin == f"order:{bad}")).scalar_one()
        assert problem.state == "problem" and problem.number is None and "NIP" in problem.problem


def test_an_exempt_line_needs_its_legal_basis_and_then_says_it(engine: Engine) -> None:
    order_id = add_order(engine, "S1", [("BOOK", 1, "50.00", "zw", "goods")])
    with pytest.raises(InvoiceProblem, match="legal basis"):
        service().issue_order(engine, order_id, now=NOW)
    issued = service(settings(exemption_basis="art. 43 ust. 1 pkt 1 ustawy o VAT")).issue_order(engine, order_id,
                                                                                                  now=NOW)
    root = _xml(issued.invoice)
    assert _text(root, "fa:Fa/fa:Adnotacje/fa:Zwolnienie/fa:P_19A") == "art. 43 ust. 1 pkt 1 ustawy o VAT"
    assert _text(root, "fa:Fa/fa:P_13_7") == "50.00"


def test_a_consumer_gets_an_invoice_only_on_request(engine: Engine) -> None:
    order_id = add_order(engine, "S1", [("A", 1, "100.00", "23", "goods")], nip=None)
    hub = service()
    with pytest.raises(InvoiceProblem, match="on request"):
        hub.issue_order(engine, order_id, now=NOW)
    issued = hub.issue_order(engine, order_id, now=NOW, on_request=True)
    assert issued.invoice.number == "FV/1/12/2026" and not issued.invoice.business
    assert _text(_xml(issued.invoice), "fa:Podmiot2/fa:DaneIdentyfikacyjne/fa:BrakID") == "1"


def test_a_foreign_currency_states_its_vat_in_pln_at_the_nbp_rate(engine: Engine) -> None:
    order_id = add_order(engine, "S1", [("A", 3, "19.99", "23", "goods")], currency="EUR")
    rates = FakeRates("4.2537")
    hub = service(nbp=rates)
    invoice = hub.issue_order(engine, order_id, now=NOW).invoice
    assert problems(fa3(), invoice.xml.encode()) == []
    vat = Decimal(invoice.rates[0]["vat"])
    assert invoice.rates[0]["vat_pln"] == str((vat * Decimal("4.2537")).quantize(Decimal("0.01")))
    root = _xml(invoice)
    assert _text(root, "fa:Fa/fa:KodWaluty") == "EUR"
    assert _text(root, "fa:Fa/fa:P_14_1W") == invoice.rates[0]["vat_pln"]
    assert _text(root, "fa:Fa/fa:FaWiersz/fa:KursWaluty") == "4.2537"
    # the rate of a tax point is asked for once and kept
    other = add_order(engine, "S2", [("A", 1, "5.00", "23", "goods")], currency="EUR")
    hub.issue_order(engine, other, now=NOW)
    assert len(rates.calls) == 1
    with transaction(engine) as session:
        assert session.execute(select(func.count()).select_from(ExchangeRate)).scalar_one() == 1


def test_split_payment_over_the_threshold_with_annex_15_goods(engine: Engine) -> None:
    from hub.invoicing.goods import InvoicingFile

    order_id = add_order(engine, "S1", [("LAPTOP-1", 3, "6000.00", "23", "goods")])
    small = add_order(engine, "S2", [("LAPTOP-1", 1, "6000.00", "23", "goods")])
    hub = service(goods=InvoicingFile(annex15_prefixes=("LAPTOP-",)))
    invoice = hub.issue_order(engine, order_id, now=NOW).invoice
    assert invoice.split_payment
    root = _xml(invoice)
    assert _text(root, "fa:Fa/fa:Adnotacje/fa:P_18A") == "1"
    assert _text(root, "fa:Fa/fa:Platnosc/fa:RachunekBankowy/fa:NrRB") == "61109010140000071219812874"
    assert not hub.issue_order(engine, small, now=NOW).invoice.split_payment


def test_a_lot_of_orders_is_issued_in_one_transaction_as_each_would_be_alone(engine: Engine) -> None:
    """issue_orders (the queue's lot of invoicing.issue jobs): consecutive numbers in the orders' order,
    each document valid and the same as issue_order makes; a consumer skipped, a bad NIP a problem without
    a number, an unknown order its own error, a currency whose rate is not cached yet issued alone after
    the lot; an order issued before keeps its invoice."""
    from hub.invoicing.issue import OnRequestOnly
    from hub.kernel.errors import NotFoundError

    first = add_order(engine, "L0", [("A", 1, "10.00", "23", "goods")])
    hub = service(nbp=FakeRates("4.2537"))
    before = hub.issue_order(engine, first, now=NOW).invoice
    ids = [first,
           add_order(engine, "L1", [("A", 2, "123.00", "23", "goods"), (None, 1, "15.99", None, "shipping")]),
           add_order(engine, "L2", [("A", 1, "100.00", "23", "goods")], nip=None),
           add_order(engine, "L3", [("A", 1, "100.00", "23", "goods")], nip="1234567890"),
           add_order(engine, "L4", [("A", 3, "19.99", "23", "goods")], currency="EUR", country="DE",
                     nip="DE136695976"),
           add_order(engine, "L5", [("B", 1, "10.80", "8", "goods")]),
           999_999]
    results = hub.issue_orders(engine, ids, now=NOW)
    again, l1, l2, l3, l4, l5, missing = results
    assert again.invoice.id == before.id and not again.created  # type: ignore[union-attr]
    assert isinstance(l2, OnRequestOnly) and isinstance(l3, InvoiceProblem) and isinstance(missing, NotFoundError)
    # the lot's two numbered in order; the euro order (no cached rate) after it, alone
    assert [r.invoice.number for r in (l1, l5, l4)] == ["FV/2/12/2026", "FV/3/12/2026", "FV/4/12/2026"]  # type: ignore[union-attr]
    assert l4.invoice.exchange_rate == Decimal("4.2537")  # type: ignore[union-attr]
    for issued in (l1, l4, l5):
        assert problems(fa3(), issued.invoice.xml.encode()) == []  # type: ignore[union-attr]
    with transaction(engine) as session:
        stored = {i.origin: i for i in session.execute(select(Invoice)).scalars()}
        lines = session.execute(select(func.count()).select_from(InvoiceLine).where(
            InvoiceLine.invoice_id == l1.invoice.id)).scalar_one()  # type: ignore[union-attr]
        counter = session.get(InvoiceCounter, ("FV", "2026-12")).last_seq
    assert stored[f"order:{ids[3]}"].state == "problem" and stored[f"order:{ids[3]}"].number is None
    assert f"order:{ids[2]}" not in stored and counter == 4 and lines == 2
    assert stored[f"order:{ids[1]}"].xml == l1.invoice.xml  # type: ignore[union-attr]
    # the same order alone in a fresh database gives the same document, byte for byte
    from sqlalchemy import delete

    with transaction(engine) as session:
        session.execute(delete(InvoiceLine))
        session.execute(delete(Invoice))
        session.execute(delete(InvoiceCounter))
    for order_id in ids[:2]:
        alone = hub.issue_order(engine, order_id, now=NOW).invoice
    assert alone.number == "FV/2/12/2026" and alone.xml == l1.invoice.xml  # type: ignore[union-attr]
