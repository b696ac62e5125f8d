"""The VAT rules of a sales document (hub.orders.sales_documents): Polish rounding, VAT from the gross
per rate, the document's kind and buyer. The ERP connectors only render what these compute
(tests/connectors/erp: golden files)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.kernel.errors import PermanentError
from hub.kernel.ports.channel import ChannelOrder, InvoiceRequest, OrderLine, Payment
from hub.kernel.types import Address
from hub.kernel.vat import NO_VAT_CODES, VAT_CODES, normalize_nip
from hub.orders.sales_documents import money, sales_document, unit_price_net, vat_from_gross

D = Decimal
CREATED = datetime(2025, 6, 30, 21, 50, tzinfo=UTC)
COMPANY = Address(name="Kawiarnia", street="ul. Piotrkowska 100", city="Łódź", postal_code="90-004")


def order(lines: list[OrderLine], invoice: InvoiceRequest | None = None, **extra: object) -> ChannelOrder:
    values: dict[str, object] = dict(
        channel_account="allegro-main", external_id="o-1", revision="r1", status="READY_FOR_PROCESSING",
        lines=lines, buyer_email="jan@example.com", buyer_login="jan", delivery_address=None, pickup_point=None,
        delivery_method="Kurier", payment=Payment("paid", D("1.00"), "PLN", "ONLINE"), invoice=invoice,
        currency="PLN", created_at=CREATED, updated_at=CREATED)
    values.update(extra)
    return ChannelOrder(**values)  # type: ignore[arg-type]


def line(unit: str, quantity: int = 1, rate: str | None = "23", sku: str | None = "A") -> OrderLine:
    return OrderLine(sku, None, f"item {sku}", quantity, D(unit), rate)  # type: ignore[arg-type]


# --- Polish rounding (art. 106e ust. 11): half a grosz and more up, computed once per rate ------------


def test_polish_rounding_from_gross_per_rate() -> None:
    """VAT is computed from each rate's gross sum, half up; line values are informative."""
    assert vat_from_gross(D("0.99"), "23") == D("0.19")  # 0.18512
    assert vat_from_gross(D("1.98"), "23") == D("0.37")  # 0.37024, not 2 x 0.19
    assert vat_from_gross(D("1.35"), "8") == D("0.10")  # exactly 0.1000
    assert vat_from_gross(D("6.15"), "23") == D("1.15")  # exactly 1.15
    assert vat_from_gross(D("3.21"), "23") == D("0.60")  # 0.600243...
    assert vat_from_gross(D("2.70"), "8") == D("0.20")  # 0.2 exactly
    assert vat_from_gross(D("0.27"), "8") == D("0.02")  # 0.02 exactly
    assert vat_from_gross(D("0.07"), "23") == D("0.01")  # 0.01308...
    assert vat_from_gross(D("0.06"), "8") == D("0.00")  # 0.00444...
    assert vat_from_gross(D("1.62"), "8") == D("0.12")  # 0.12 exactly
    assert vat_from_gross(D("2.43"), "23") == D("0.45")  # 0.4543...
    assert vat_from_gross(D("10.00"), "zw") == D("0.00")
    assert money(D("0.005")) == D("0.01") and money(D("0.0049")) == 0


def test_rounding_edge_cases() -> None:
    # half a grosz rounds up, where banker's rounding (the Decimal default) would go to the even grosz
    assert money(D("0.125")) == D("0.13") and money(D("0.135")) == D("0.14") and money(D("2.5050")) == D("2.51")
    assert money(D("0.12499999")) == D("0.12")
    # just under and at a grosz boundary of the VAT: 23 % of 0.03..0.04 gross
    assert vat_from_gross(D("0.02"), "23") == D("0.00")  # 0.00374
    assert vat_from_gross(D("0.03"), "23") == D("0.01")  # 0.00561: over half a grosz
    assert vat_from_gross(D("0.05"), "5") == D("0.00")  # 0.00238
    assert vat_from_gross(D("0.11"), "5") == D("0.01")  # 0.00524
    # 0 % is a rate with VAT 0.00; the codes without VAT, too; an amount of zero has no VAT
    assert {vat_from_gross(D("99.99"), code) for code in ("0", "zw", "np", "oo")} == {D("0.00")}
    assert vat_from_gross(D("0.00"), "23") == D("0.00")
    # large amounts: exact, no float and no loss of precision
    assert vat_from_gross(D("9999999999.99"), "23") == D("1869918699.19")  # 1869918699.18512...
    # a line's gross is rounded once, after the multiplication (not the unit price first)
    document = sales_document("x/1", order([line("0.125", 3), line("1.005", 1, "8", "B"), line("0.0049", 1, "5", "C")]))
    assert [a.gross for a in document.lines] == [D("0.38"), D("1.01"), D("0.00")]  # 0.375, 1.005, 0.0049
    # the informative unit net price: 4 decimals, half up; the gross as it is where there is no VAT
    assert unit_price_net(D("1.23"), "23") == D("1.0000")
    assert unit_price_net(D("29.99"), "23") == D("24.3821")  # 24.38211...
    assert unit_price_net(D("0.000054"), "8") == D("0.0001")  # 0.00005 exactly: up
    assert unit_price_net(D("0.000053"), "8") == D("0.0000")  # 0.0000490...
    assert unit_price_net(D("7.5"), "oo") == D("7.5000") and unit_price_net(D("0.00005"), "0") == D("0.0001")


def test_line_values_may_differ_from_the_rate_total_by_a_grosz() -> None:
    document = sales_document("x/1", order([line("0.99", sku="A"), line("0.99", sku="B")]))
    assert [a.vat for a in document.lines] == [D("0.19"), D("0.19")]
    (rate,) = document.rates
    assert (rate.vat_rate, rate.net, rate.vat, rate.gross) == ("23", D("1.61"), D("0.37"), D("1.98"))
    assert (document.net, document.vat, document.gross) == (D("1.61"), D("0.37"), D("1.98"))


def test_a_document_of_two_rates() -> None:
    """The invoice of tests/connectors/erp (its golden files show these amounts)."""
    document = sales_document("allegro-main/1", order([line("29.99", 3, "23", "KUB"), line("24.50", 2, "8", "KAW")]))
    assert [(a.line_no, a.sku, a.gross, a.net, a.vat, a.unit_price_net) for a in document.lines] == [
        (1, "KUB", D("89.97"), D("73.15"), D("16.82"), D("24.3821")),
        (2, "KAW", D("49.00"), D("45.37"), D("3.63"), D("22.6852"))]
    assert [(r.vat_rate, r.net, r.vat, r.gross) for r in document.rates] == [
        ("23", D("73.15"), D("16.82"), D("89.97")), ("8", D("45.37"), D("3.63"), D("49.00"))]
    assert (document.net, document.vat, document.gross) == (D("118.52"), D("20.45"), D("138.97"))


def test_every_code_of_hub_kernel_vat_and_the_rates_in_their_order() -> None:
    lines = [line("10.00", rate=code, sku=code) for code in reversed(VAT_CODES)]
    document = sales_document("x/1", order(lines))
    assert [r.vat_rate for r in document.rates] == list(VAT_CODES)  # the documents' order, not the lines'
    for rate in document.rates:
        if rate.vat_rate in NO_VAT_CODES:
            assert (rate.net, rate.vat, rate.gross) == (D("10.00"), D("0.00"), D("10.00"))  # net = gross
    assert {r.vat_rate: r.vat for r in document.rates} == {
        "23": D("1.87"), "8": D("0.74"), "5": D("0.48"), "0": D("0.00"), "zw": D("0.00"), "np": D("0.00"),
        "oo": D("0.00")}


# --- what cannot be booked ---------------------------------------------------------------------------


@pytest.mark.parametrize(("lines", "problem"), [
    ([], "sales document x/1: the order has no lines"),
    ([line("1.00"), line("1.00", rate=None, sku="B")],
     "sales document x/1, line 2 ('B'): no VAT rate (the hub must fill it from the ERP's catalogue"),
    ([line("1.00", rate=None, sku=None)], "line 1 ('item None'): no VAT rate"),
    ([line("1.00", rate="17")], "line 1 ('A'): unknown VAT rate '17'"),
    ([line("1.00", quantity=0)], "line 1 ('A'): quantity 0 is not positive"),
    ([line("-0.01")], "line 1 ('A'): negative unit price -0.01"),
])
def test_a_document_that_cannot_be_booked_is_refused(lines: list[OrderLine], problem: str) -> None:
    with pytest.raises(PermanentError) as caught:
        sales_document("x/1", order(lines))
    assert problem in str(caught.value)


# --- kind, buyer, time ----------------------------------------------------------------------------------


def test_nip_normalisation() -> None:
    assert normalize_nip("PL 725-123-45-67") == "7251234567"
    assert normalize_nip("pl7251234567") == "7251234567"
    assert normalize_nip("725.123.45.67") == "7251234567"
    assert normalize_nip("de 123 456 789") == "DE123456789"
    assert normalize_nip("PL 123") == "PL123"  # not a NIP: kept, compact
    assert normalize_nip(" ") == "" and normalize_nip(None) == ""


def test_invoice_or_receipt() -> None:
    invoice = InvoiceRequest("Kawiarnia", "PL 725-123-45-61", COMPANY)
    document = sales_document("x/1", order([line("1.00")], invoice))
    assert document.kind == "invoice" and document.buyer is not None
    assert (document.buyer.company, document.buyer.nip, document.buyer.address) == ("Kawiarnia", "7251234561", COMPANY)
    # an invoice asked for without a NIP: a receipt (the ERP issues a consumer's invoice to it), the
    # details kept for the record
    no_nip = sales_document("x/1", order([line("1.00")], replace(invoice, nip=" - ")))
    assert no_nip.kind == "receipt" and no_nip.buyer is not None and no_nip.buyer.nip == ""
    plain = sales_document("x/1", order([line("1.00")]))
    assert plain.kind == "receipt" and plain.buyer is None


@pytest.mark.parametrize(("country", "expected"), [
    ("PL", ("PL", "PL", False)), ("", ("PL", "PL", False)), ("de", ("DE", "DE", True)),
    ("GR", ("GR", "EL", True)), ("US", ("US", "", False)), ("GB", ("GB", "", False)),
])
def test_the_buyers_country_in_the_eu(country: str, expected: tuple[str, str, bool]) -> None:
    invoice = InvoiceRequest("Firma", "DE136695976", replace(COMPANY, country=country))
    buyer = sales_document("x/1", order([line("1.00")], invoice)).buyer
    assert buyer is not None and (buyer.country, buyer.eu_vat_prefix, buyer.intra_eu) == expected


def test_a_buyer_without_an_address_is_polish() -> None:
    invoice = InvoiceRequest("Firma", "7251234561", None)  # type: ignore[arg-type]  # as stored_order may give it
    buyer = sales_document("x/1", order([line("1.00")], invoice)).buyer
    assert buyer is not None and (buyer.address, buyer.country, buyer.intra_eu) == (None, "PL", False)


# --- the buyer's NIP: checked, never written as if valid when it is not ---------------------------------


def invoice_to(nip: str, country: str | None = "PL") -> ChannelOrder:
    address = None if country is None else replace(COMPANY, country=country)
    return order([line("1.00")], InvoiceRequest("Firma", nip, address))  # type: ignore[arg-type]


@pytest.mark.parametrize(("nip", "country", "written"), [
    ("7251234561", "PL", "7251234561"),
    ("PL 725-123-45-61", "PL", "7251234561"),  # a prefix, spaces and dashes around a good NIP
    ("pl725.123.45.61", None, "7251234561"),  # dots; no address: a Polish buyer
    ("526-000-12-46", "DE", "5260001246"),  # a Polish NIP of a buyer with a foreign address
    ("DE136695976", "DE", "DE136695976"),  # an EU VAT number: written as such
    ("de 136 695 976", "PL", "DE136695976"),  # ... whatever the address says
    ("EL094259216", "GR", "EL094259216"),  # Greece's prefix
    ("ATU13585627", "AT", "ATU13585627"),  # letters in the number
    ("FR40303265045", "FR", "FR40303265045"),
    ("136695976", "DE", "136695976"),  # without the prefix, from a buyer in that state: as given
    ("0403019261", "BE", "0403019261"),  # 10 digits, not a Polish NIP, but a Belgian VAT number
    ("XI925901618", "GB", "XI925901618"),  # Northern Ireland, in VIES for goods
    ("12-3456789", "US", "123456789"),  # outside the EU: a tax id the hub cannot check
    ("GB980780684", "GB", "GB980780684"),
    ("CHE-123.456.788", "CH", "CHE123456788"),
])
def test_a_valid_nip_or_vat_number_is_written(nip: str, country: str | None, written: str) -> None:
    document = sales_document("x/1", invoice_to(nip, country))
    assert document.kind == "invoice" and document.buyer is not None and document.buyer.nip == written


@pytest.mark.parametrize(("nip", "country", "problem"), [
    ("7251234567", "PL", "is not a valid Polish NIP (wrong check digit)"),
    ("PL 725-123-45-67", "PL", "is not a valid Polish NIP (wrong check digit)"),
    ("725 123 45 67", None, "is not a valid Polish NIP (wrong check digit)"),  # no address: a Polish buyer
    ("1234567890", "PL", "is not a valid Polish NIP (wrong check digit)"),
    ("725123456", "PL", "is not a valid Polish NIP (a NIP has 10 digits)"),
    ("72512345610", "PL", "is not a valid Polish NIP (a NIP has 10 digits)"),
    ("PL123", "PL", "is not a valid Polish NIP (a NIP has 10 digits)"),
    ("PL7251234567", "US", "is not a valid Polish NIP (wrong check digit)"),  # "PL" says what it is
    ("PL 7251234567", "DE", "is not a valid Polish NIP (wrong check digit)"),
    ("DE123456789", "DE", "is not a valid EU VAT number of DE"),
    ("DE123456789", "PL", "is not a valid EU VAT number of DE"),
    ("DE123456789", "US", "is not a valid EU VAT number of DE"),  # an EU prefix is checked for anyone
    ("EL123456789", "GR", "is not a valid EU VAT number of EL"),
    ("123456789", "DE", "is neither a valid Polish NIP nor a valid VAT number of DE"),
    ("7251234567", "SK", "is neither a valid Polish NIP nor a valid VAT number of SK"),
    ("GB980780684", "PL", "is neither a valid Polish NIP nor an EU VAT number"),
    ("NIP: 7251234561", "PL", "is neither a valid Polish NIP nor an EU VAT number"),
])
def test_a_bad_nip_refuses_the_document_naming_the_order_and_the_nip(nip: str, country: str | None,
                                                                     problem: str) -> None:
    with pytest.raises(PermanentError) as caught:
        sales_document("allegro-main/o-1", invoice_to(nip, country))
    message = str(caught.value)
    assert message.startswith(f"sales document allegro-main/o-1 (order o-1 of allegro-main): the invoice's NIP "
                              f"{nip!r} {problem}; ")
    assert "hub jobs retry" in message


def test_no_nip_is_a_receipt_not_an_error() -> None:
    for nip in ("", " ", " - ", "..."):
        document = sales_document("x/1", invoice_to(nip))
        assert document.kind == "receipt" and document.buyer is not None and document.buyer.nip == ""


def test_issued_at_is_utc_and_defaults_to_the_orders_creation() -> None:
    lines = [line("1.00")]
    assert sales_document("x/1", order(lines)).issued_at == CREATED
    warsaw = timezone(timedelta(hours=2))
    issued = sales_document("x/1", order(lines), issued_at=datetime(2025, 7, 1, 0, 30, tzinfo=warsaw)).issued_at
    assert issued == datetime(2025, 6, 30, 22, 30, tzinfo=UTC) and issued.tzinfo is UTC
    stored = datetime(2025, 12, 31, 23, 30, tzinfo=UTC)
    naive = sales_document("x/1", order(lines, created_at=stored.replace(tzinfo=None))).issued_at  # as SQLite has it
    assert naive == stored and naive.tzinfo is UTC


def test_the_order_travels_with_the_document() -> None:
    the_order = order([line("1.00")])
    document = sales_document("x/1", the_order)
    assert document.order is the_order and document.reference == "x/1"


# --- an independent recomputation ------------------------------------------------------------------------

# the percentages, written down again from the VAT act (not read from hub.kernel.vat)
LAW: dict[str, int | None] = {"23": 23, "8": 8, "5": 5, "0": 0, "zw": None, "np": None, "oo": None}
ORDER = ["23", "8", "5", "0", "zw", "np", "oo"]


def half_up(amount: Fraction, places: int = 2) -> int:
    """A non-negative amount in units of 10**-places, half up (integer arithmetic on exact fractions)."""
    return math.floor(amount * 10**places + Fraction(1, 2))


def vat_in(gross_grosze: int, rate: str) -> int:
    percent = LAW[rate]
    return 0 if not percent else half_up(Fraction(gross_grosze, 100) * percent / (100 + percent))


def grosze(value: Decimal) -> int:
    assert value.as_tuple().exponent == -2, value  # always two decimals: the rendered forms depend on it
    return int(value * 100)


prices = st.one_of(st.decimals(min_value=0, max_value=10_000, places=2),
                   st.decimals(min_value=0, max_value=100, places=4))
order_lines = st.lists(st.tuples(st.sampled_from(ORDER), st.integers(1, 500), prices), min_size=1, max_size=12)


@given(order_lines)
def test_amounts_match_a_straightforward_per_rate_computation(drawn: list[tuple[str, int, Decimal]]) -> None:
    lines = [OrderLine(f"S{n}", None, "x", qty, unit, rate) for n, (rate, qty, unit) in enumerate(drawn)]  # type: ignore[arg-type]
    document = sales_document("x/1", order(lines))

    gross_by_rate: dict[str, int] = {}
    for computed, (rate, qty, unit) in zip(document.lines, drawn, strict=True):
        gross = half_up(Fraction(unit) * qty)
        assert (grosze(computed.gross), grosze(computed.vat)) == (gross, vat_in(gross, rate))
        assert grosze(computed.net) == gross - vat_in(gross, rate)
        percent = LAW[rate] or 0
        assert computed.unit_price_net == Decimal(half_up(Fraction(unit) * 100 / (100 + percent), 4)) / 10**4
        gross_by_rate[rate] = gross_by_rate.get(rate, 0) + gross

    expected = [(rate, gross_by_rate[rate] - vat_in(gross_by_rate[rate], rate), vat_in(gross_by_rate[rate], rate),
                 gross_by_rate[rate]) for rate in ORDER if rate in gross_by_rate]
    assert [(r.vat_rate, grosze(r.net), grosze(r.vat), grosze(r.gross)) for r in document.rates] == expected
    assert (grosze(document.net), grosze(document.vat), grosze(document.gross)) == (
        sum(e[1] for e in expected), sum(e[2] for e in expected), sum(e[3] for e in expected))
    assert document.net + document.vat == document.gross
    # each line's VAT is off by at most half a grosz, and so is the rate's: their sums differ by little
    for rate in document.rates:
        used = [a for a in document.lines if a.vat_rate == rate.vat_rate]
        assert abs(sum(grosze(a.vat) for a in used) - grosze(rate.vat)) <= (len(used) + 1) / 2
