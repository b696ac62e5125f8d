"""The VAT rules of a sales document: an accepted order becomes what the ERP must book.

Pure functions on Decimal, no I/O. ERP connectors render the result (JSON, EDI++, staging rows)
and decide nothing; the rules are here:

- Money is rounded once, the Polish way (art. 106e ust. 11 of the VAT act: below half a grosz is
  dropped, half a grosz and more rounds up, i.e. ROUND_HALF_UP).
- A line's gross value is its unit gross price times its quantity, to the grosz.
- Prices are gross (what the buyer paid), so VAT is computed *from the gross sum* of each VAT rate:
  ``vat = round(gross * rate / (100 + rate))`` and ``net = gross - vat`` (the "od wartości brutto"
  method for documents priced gross).
- The document's totals are the sums over the rates. Each line also carries its own net and VAT
  (the same formula on the line's gross) for information; they may differ from the rate's total by
  a grosz, and the rate's total is the one that counts (it is what the ERP's VAT table shows).
- Exempt (``zw``), not subject (``np``) and reverse-charge (``oo``) lines have no VAT: net = gross
  (hub.kernel.vat holds the codes).
- A line without a VAT rate is refused (the hub fills it from the ERP's catalogue before; tax is
  never guessed), as are an unknown rate, a quantity below 1, a negative price and an order
  without lines.
- The document is an invoice when the buyer asked for one with a NIP; a receipt otherwise (an
  invoice for a consumer without a NIP is issued in the ERP to the receipt, when asked).
- The buyer's NIP is normalised (hub.kernel.vat.normalize_nip); a buyer in another EU member state
  is an intra-EU buyer, named with the state's VAT prefix (``EL`` for Greece).
- The buyer's NIP is checked, never written as if valid when it is not (buyer_nip): a Polish NIP
  needs its check digit (``PL``, spaces, dashes and dots around it are fine); a foreign EU VAT number
  (``DE136695976``, or without its prefix from a buyer in that state) needs its own checksum and
  form, and is written as given; a buyer outside the EU may give any tax id (the hub cannot check
  those). Anything else refuses the document with a PermanentError naming the order and the NIP:
  the intake quarantines a new order with a bad NIP, but a later revision of an accepted order (the
  buyer adds or corrects the invoice details after paying) replaces them unchecked.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from stdnum.eu import vat as eu_vat
from stdnum.pl import nip as pl_nip

from hub.kernel.clock import as_utc
from hub.kernel.errors import PermanentError
from hub.kernel.money import to_grosz
from hub.kernel.ports.channel import ChannelOrder, InvoiceRequest, OrderLine
from hub.kernel.ports.erp import DocumentBuyer, DocumentKind, DocumentLine, RateTotal, SalesDocument
from hub.kernel.vat import HOME_COUNTRY, VAT_CODES, VAT_PERCENT, VatRate, eu_vat_prefix, normalize_nip

UNIT_NET_PLACES = Decimal("0.0001")
# the prefixes of VAT numbers the EU's VIES knows (Greece's EL, Northern Ireland's XI): stdnum checks them
_EU_VAT_PREFIXES = frozenset({code.upper() for code in eu_vat.MEMBER_STATES} | {"EL"})


def money(value: Decimal) -> Decimal:
    """To the grosz, half a grosz and more up (art. 106e ust. 11)."""
    return to_grosz(value)


def vat_from_gross(gross: Decimal, rate: VatRate) -> Decimal:
    """The VAT contained in a gross amount at ``rate`` (0.00 for the codes without VAT)."""
    percent = VAT_PERCENT[rate]
    if not percent:
        return Decimal("0.00")
    return money(gross * percent / (100 + percent))


def unit_price_net(unit_price_gross: Decimal, rate: VatRate) -> Decimal:
    """A unit's price without VAT, to 4 decimals (informative: documents are priced gross)."""
    percent = VAT_PERCENT[rate]
    if not percent:
        return unit_price_gross.quantize(UNIT_NET_PLACES, rounding=ROUND_HALF_UP)
    return (unit_price_gross * 100 / (100 + percent)).quantize(UNIT_NET_PLACES, rounding=ROUND_HALF_UP)


def with_charge_rates(lines: Sequence[OrderLine]) -> list[OrderLine]:
    """A delivery or fee line whose channel gave no VAT rate follows the goods it goes with (art. 29a
    ust. 6 of the VAT act: the ancillary service's base is part of the supply's): the goods' rate when
    they share one, else split into one line per rate in proportion to the goods' gross at each rate
    (the last part takes the rounding). A charge with no goods to follow keeps no rate (refused)."""
    goods: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        if line.kind == "goods" and line.vat_rate is not None:
            goods[line.vat_rate] += line.unit_price_gross * line.quantity
    out: list[OrderLine] = []
    for line in lines:
        if line.kind == "goods" or line.vat_rate is not None or not goods:
            out.append(line)
            continue
        total = sum(goods.values(), Decimal(0))
        rates = [rate for rate in VAT_CODES if rate in goods]
        if len(rates) == 1 or total == 0:
            out.append(replace(line, vat_rate=rates[0]))
            continue
        charge = money(line.unit_price_gross * line.quantity)
        left = charge
        for index, rate in enumerate(rates):
            part = left if index == len(rates) - 1 else money(charge * goods[rate] / total)
            left -= part
            out.append(replace(line, quantity=1, unit_price_gross=part, vat_rate=rate,
                               name=f"{line.name} (VAT {rate}{'%' if rate.isdigit() else ''})"))
    return out


def document_line(number: int, line: OrderLine, *, where: str) -> DocumentLine:
    """An order line with its amounts; one that cannot be booked is a PermanentError naming it."""
    where = f"{where}, line {number} ({line.sku or line.name!r})"
    rate = line.vat_rate
    if rate is None:
        raise PermanentError(f"{where}: no VAT rate (the hub must fill it from the ERP's catalogue before "
                             "posting; an ERP document cannot guess the tax)")
    if rate not in VAT_PERCENT:
        raise PermanentError(f"{where}: unknown VAT rate {rate!r}")
    if line.quantity <= 0:
        raise PermanentError(f"{where}: quantity {line.quantity} is not positive")
    if line.unit_price_gross < 0 and line.kind == "goods":  # a charge may be negative: a discount fee
        raise PermanentError(f"{where}: negative unit price {line.unit_price_gross}")
    gross = money(line.unit_price_gross * line.quantity)
    vat = vat_from_gross(gross, rate)
    return DocumentLine(
        line_no=number, sku=line.sku, offer_id=line.offer_id, line_id=line.line_id, name=line.name,
        quantity=line.quantity, unit_price_gross=line.unit_price_gross,
        unit_price_net=unit_price_net(line.unit_price_gross, rate), vat_rate=rate, net=gross - vat, vat=vat,
        gross=gross)


def rate_totals(lines: Sequence[DocumentLine]) -> list[RateTotal]:
    """Per VAT rate the document uses (in VAT_CODES order): the gross sum, the VAT computed from it,
    and the net as their difference."""
    totals: list[RateTotal] = []
    for rate in VAT_CODES:
        used = [line for line in lines if line.vat_rate == rate]
        if used:
            gross = sum((line.gross for line in used), Decimal("0.00"))
            vat = vat_from_gross(gross, rate)
            totals.append(RateTotal(rate, gross - vat, vat, gross))
    return totals


def _polish_nip_problem(nip: str) -> str:
    return "wrong check digit" if re.fullmatch(r"\d{10}", nip) else "a NIP has 10 digits"


def nip_problem(nip: str | None, country: str) -> str | None:
    """What is wrong with an invoice's tax id for a buyer in ``country`` (None: nothing; see buyer_nip).
    Intake quarantines an order with one; the document builder refuses to book it."""
    return _checked_nip(nip, country)[1]


def buyer_nip(nip: str | None, country: str, *, where: str) -> str:
    """The buyer's tax id as the document carries it (hub.kernel.vat.normalize_nip: a Polish NIP as
    its 10 digits, another id compact and upper-case; ``""`` for none), once it is known to be one:

    - a valid Polish NIP, whatever the buyer's country;
    - a valid VAT number of another EU member state (VIES's form and checksum, checked offline): with
      its prefix from any buyer, without it from a buyer in that state;
    - any tax id without a Polish or EU prefix from a buyer outside the EU (not checkable here).

    Anything else (a Polish NIP with a wrong check digit or length, a foreign EU VAT number that is
    not one) is a PermanentError naming the order and the NIP as given: an invoice to a wrong NIP
    must be corrected, never booked as if valid. ``country`` is the buyer's ISO code, upper-case."""
    normalized, problem = _checked_nip(nip, country)
    if problem is not None:
        raise PermanentError(f"{where}: the invoice's NIP {nip!r} is {problem}; correct it in the channel and "
                             "retry the job (hub jobs retry), or issue the invoice in the ERP by hand")
    return normalized


def _checked_nip(nip: str | None, country: str) -> tuple[str, str | None]:
    normalized = normalize_nip(nip)
    if not normalized or pl_nip.is_valid(normalized):
        return normalized, None
    compact = re.sub(r"[\s\-.]", "", nip or "").upper()
    given = compact[:2] if compact[:2].isalpha() else ""  # the prefix the buyer wrote, if any
    home = eu_vat_prefix(country)  # the buyer's state's VAT prefix; None outside the EU
    if given == "PL":
        return normalized, f"not a valid Polish NIP ({_polish_nip_problem(normalized.removeprefix('PL'))})"
    if given:
        if eu_vat.is_valid(normalized):
            return normalized, None
        if given not in _EU_VAT_PREFIXES:
            if home is None:
                return normalized, None  # a tax id of a country outside the EU
            return normalized, "neither a valid Polish NIP nor an EU VAT number"
        return normalized, f"not a valid EU VAT number of {given}"
    if home is None:
        return normalized, None  # a tax id of a country outside the EU
    if home != HOME_COUNTRY and eu_vat.is_valid(home + normalized):
        return normalized, None
    if home != HOME_COUNTRY:
        return normalized, f"neither a valid Polish NIP nor a valid VAT number of {home}"
    return normalized, f"not a valid Polish NIP ({_polish_nip_problem(normalized)})"


def buyer(invoice: InvoiceRequest | None, *, where: str = "sales document") -> DocumentBuyer | None:
    """The invoice's buyer as the document names it; None when no invoice was asked for. A NIP that
    is not one is a PermanentError (buyer_nip)."""
    if invoice is None:
        return None
    address = invoice.address
    country = ((address.country if address is not None else None) or HOME_COUNTRY).upper()
    prefix = eu_vat_prefix(country)
    eu = prefix is not None
    return DocumentBuyer(company=invoice.company, nip=buyer_nip(invoice.nip, country, where=where), address=address,
                         country=country, eu_vat_prefix=prefix or "",
                         intra_eu=eu and country != HOME_COUNTRY)


def kind_of(document_buyer: DocumentBuyer | None) -> DocumentKind:
    """An invoice when the buyer asked for one with a NIP; a receipt otherwise."""
    return "invoice" if document_buyer is not None and document_buyer.nip else "receipt"


def sales_document(reference: str, order: ChannelOrder, *, issued_at: datetime | None = None) -> SalesDocument:
    """The sales document of an accepted order: issued at ``issued_at`` (the order's creation when
    None), its kind, buyer, lines and amounts. An order that cannot be booked is a PermanentError
    naming the line and the reason."""
    if not order.lines:
        raise PermanentError(f"sales document {reference}: the order has no lines")
    where = f"sales document {reference}"
    order_lines = with_charge_rates(order.lines)
    lines = [document_line(number, line, where=where) for number, line in enumerate(order_lines, 1)]
    rates = rate_totals(lines)
    document_buyer = buyer(order.invoice, where=f"{where} (order {order.external_id} of {order.channel_account})")
    return SalesDocument(
        reference=reference, order=order, issued_at=as_utc(issued_at or order.created_at),
        kind=kind_of(document_buyer), buyer=document_buyer, lines=lines, rates=rates,
        net=sum((r.net for r in rates), Decimal("0.00")), vat=sum((r.vat for r in rates), Decimal("0.00")),
        gross=sum((r.gross for r in rates), Decimal("0.00")))
