"""Sales and restock documents as the ERP connectors hand them over: amounts, names, the JSON form.

Money is Decimal throughout and rounded once, the Polish way (art. 106e ust. 11 of the VAT act:
below half a grosz is dropped, half a grosz and more rounds up, i.e. ROUND_HALF_UP):

- a line's gross value is its unit gross price times its quantity, to the grosz;
- the prices are gross (what the buyer paid), so VAT is computed *from the gross sum* of each VAT
  rate: ``vat = round(gross * rate / (100 + rate))`` and ``net = gross - vat`` (the "od wartości
  brutto" method Subiekt uses for documents priced gross);
- the document's totals are the sums over the rates. Each line also carries its own net and VAT
  (the same formula on the line's gross) for information; they may differ from the rate's total by
  a grosz, and the rate's total is the one that counts (it is what the ERP's VAT table shows).

Exempt (``zw``), not subject (``np``) and reverse-charge (``oo``) lines have no VAT: net = gross.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from hub.kernel.errors import PermanentError
from hub.kernel.ports.channel import OrderLine
from hub.kernel.ports.erp import RestockDocument, SalesDocument
from hub.kernel.types import Address

JSON_VERSION = 1
GROSZ = Decimal("0.01")
# the rates in the order documents list them; None: no VAT at all
VAT_PERCENT: Mapping[str, Decimal | None] = {
    "23": Decimal(23), "8": Decimal(8), "5": Decimal(5), "0": Decimal(0), "zw": None, "np": None, "oo": None,
}
# EU member states (ISO codes as channels give them; Greece's VAT prefix is EL)
EU_COUNTRIES = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT", "LU",
    "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
})

DocumentKind = Literal["invoice", "receipt"]


def money(value: Decimal) -> Decimal:
    return value.quantize(GROSZ, rounding=ROUND_HALF_UP)


def vat_from_gross(gross: Decimal, rate: str) -> Decimal:
    percent = VAT_PERCENT[rate]
    if percent is None or not percent:
        return Decimal("0.00")
    return money(gross * percent / (100 + percent))


@dataclass(frozen=True)
class LineAmounts:
    line_no: int  # 1-based, in the order's line order
    line: OrderLine
    vat_rate: str
    gross: Decimal
    net: Decimal
    vat: Decimal

    @property
    def unit_price_net(self) -> Decimal:
        """The unit price without VAT, to 4 decimals (informative: documents are priced gross)."""
        percent = VAT_PERCENT[self.vat_rate]
        unit = self.line.unit_price_gross
        if not percent:
            return unit.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        return (unit * 100 / (100 + percent)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class RateTotal:
    vat_rate: str
    net: Decimal
    vat: Decimal
    gross: Decimal


@dataclass(frozen=True)
class Totals:
    lines: Sequence[LineAmounts]
    rates: Sequence[RateTotal]  # in VAT_PERCENT order, only the rates the document uses
    net: Decimal
    vat: Decimal
    gross: Decimal


def totals(document: SalesDocument) -> Totals:
    """The document's amounts; a line that cannot be booked is a PermanentError naming it."""
    order = document.order
    if not order.lines:
        raise PermanentError(f"sales document {document.reference}: the order has no lines")
    lines: list[LineAmounts] = []
    for number, line in enumerate(order.lines, 1):
        where = f"sales document {document.reference}, line {number} ({line.sku or line.name!r})"
        if line.vat_rate is None:
            raise PermanentError(f"{where}: no VAT rate (the hub must fill it from the ERP's catalogue before "
                                 "posting; an ERP document cannot guess the tax)")
        if line.vat_rate not in VAT_PERCENT:
            raise PermanentError(f"{where}: unknown VAT rate {line.vat_rate!r}")
        if line.quantity <= 0:
            raise PermanentError(f"{where}: quantity {line.quantity} is not positive")
        if line.unit_price_gross < 0:
            raise PermanentError(f"{where}: negative unit price {line.unit_price_gross}")
        gross = money(line.unit_price_gross * line.quantity)
        vat = vat_from_gross(gross, line.vat_rate)
        lines.append(LineAmounts(number, line, line.vat_rate, gross, gross - vat, vat))
    rates: list[RateTotal] = []
    for rate in VAT_PERCENT:
        used = [a for a in lines if a.vat_rate == rate]
        if used:
            gross = sum((a.gross for a in used), Decimal("0.00"))
            vat = vat_from_gross(gross, rate)
            rates.append(RateTotal(rate, gross - vat, vat, gross))
    return Totals(lines, rates, net=sum((r.net for r in rates), Decimal("0.00")),
                  vat=sum((r.vat for r in rates), Decimal("0.00")),
                  gross=sum((r.gross for r in rates), Decimal("0.00")))


def normalize_nip(nip: str | None) -> str:
    """A Polish NIP as its 10 digits (``PL 123-456-78-90`` -> ``1234567890``); another VAT id
    (``DE123456789``) upper-cased without spaces and dashes; ``""`` for none."""
    if not nip:
        return ""
    compact = re.sub(r"[\s\-.]", "", nip).upper()
    digits = compact.removeprefix("PL")
    return digits if re.fullmatch(r"\d{10}", digits) else compact


def kind_of(document: SalesDocument) -> DocumentKind:
    """An invoice when the buyer asked for one with a NIP; a receipt otherwise (an invoice for a
    consumer without a NIP is issued in the ERP to the receipt, when asked)."""
    invoice = document.order.invoice
    return "invoice" if invoice is not None and normalize_nip(invoice.nip) else "receipt"


def issued_at(document: SalesDocument) -> datetime:
    """When the document is issued, in UTC: ``issued_at``, or the order's creation when unset."""
    return as_utc(document.issued_at or document.order.created_at)


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat().replace("+00:00", "Z")


# --- file names ---------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_RESERVED = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))})
MAX_STEM = 100


def reference_hash(reference: str, length: int = 10) -> str:
    return hashlib.sha256(reference.encode("utf-8")).hexdigest()[:length]


def file_stem(reference: str) -> str:
    """The reference as a file name every file system takes (Windows shares included): letters,
    digits, ``.``, ``_`` and ``-`` are kept, anything else becomes ``_``; no leading ``.`` or ``~``
    (hidden or temporary to many tools), no trailing dot, no reserved device name, at most 100
    characters (a longer one is cut and ends in a hash of the whole reference)."""
    stem = _UNSAFE.sub("_", reference).lstrip(".~").rstrip(".") or "document"
    if stem.split(".")[0].upper() in _RESERVED:
        stem = "_" + stem
    if len(stem) > MAX_STEM:
        stem = f"{stem[:MAX_STEM - 11]}-{reference_hash(reference)}"
    return stem


def stem_candidates(reference: str) -> list[str]:
    """The readable stem, then one with a hash of the exact reference, for the (rare) case that
    another reference already took the readable one (``a/b`` and ``a_b``; names that differ only
    in case on a Windows share)."""
    stem = file_stem(reference)
    return [stem, f"{stem[:MAX_STEM - 11]}-{reference_hash(reference)}"]


# --- the JSON form ------------------------------------------------------------------------


def _address(address: Address | None) -> dict[str, Any] | None:
    if address is None:
        return None
    return {"name": address.name, "company": address.company, "street": address.street,
            "postal_code": address.postal_code, "city": address.city, "country": address.country,
            "phone": address.phone, "email": address.email}


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def sales_json(document: SalesDocument, amounts: Totals | None = None) -> dict[str, Any]:
    """The versioned JSON form of a sales document (connectors/erp/README.md describes it)."""
    order = document.order
    amounts = amounts or totals(document)
    invoice = order.invoice
    payment = order.payment
    pickup = order.pickup_point
    return {
        "format": "hub.sales_document",
        "version": JSON_VERSION,
        "reference": document.reference,
        "kind": kind_of(document),
        "issued_at": iso(issued_at(document)),
        "channel": order.channel_account,
        "order": {
            "external_id": order.external_id, "revision": order.revision, "status": order.status,
            "created_at": iso(order.created_at), "updated_at": iso(order.updated_at),
        },
        "buyer": {"email": order.buyer_email, "login": order.buyer_login},
        "invoice": None if invoice is None else {
            "company": invoice.company, "nip": normalize_nip(invoice.nip) or None,
            "address": _address(invoice.address),
        },
        "delivery": {
            "method": order.delivery_method,
            "address": _address(order.delivery_address),
            "pickup_point": None if pickup is None else {
                "id": pickup.id, "name": pickup.name, "address": _address(pickup.address)},
        },
        "payment": {
            "status": payment.status, "method": payment.method, "cash_on_delivery": payment.cash_on_delivery,
            "amount": _amount(payment.amount), "currency": payment.currency,
            "cod_amount": _amount(payment.amount) if payment.cash_on_delivery else None,
            "payment_id": payment.payment_id,
        },
        "currency": order.currency,
        "lines": [{
            "line_no": a.line_no, "sku": a.line.sku, "name": a.line.name, "quantity": a.line.quantity,
            "unit_price_gross": _amount(a.line.unit_price_gross), "vat_rate": a.vat_rate,
            "net": _amount(a.net), "vat": _amount(a.vat), "gross": _amount(a.gross),
            "offer_id": a.line.offer_id, "line_id": a.line.line_id,
        } for a in amounts.lines],
        "totals": {
            "net": _amount(amounts.net), "vat": _amount(amounts.vat), "gross": _amount(amounts.gross),
            "by_vat_rate": [{"vat_rate": r.vat_rate, "net": _amount(r.net), "vat": _amount(r.vat),
                             "gross": _amount(r.gross)} for r in amounts.rates],
        },
    }


def restock_json(document: RestockDocument) -> dict[str, Any]:
    return {
        "format": "hub.restock",
        "version": JSON_VERSION,
        "reference": document.reference,
        "order_reference": document.order_reference,
        "warehouse": document.warehouse,
        "lines": [{
            "line_no": number, "sku": line.sku, "quantity": line.quantity,
            "amount_gross": _amount(line.amount_gross), "offer_id": line.offer_id, "line_id": line.line_id,
        } for number, line in enumerate(document.lines, 1)],
    }


def check_restock(document: RestockDocument) -> None:
    if not document.lines:
        raise PermanentError(f"restock {document.reference}: no lines")
    for number, line in enumerate(document.lines, 1):
        if line.quantity <= 0:
            raise PermanentError(f"restock {document.reference}, line {number}: quantity {line.quantity} "
                                 "is not positive")


def dumps(data: Mapping[str, Any]) -> bytes:
    """Stable bytes: UTF-8, 2-space indent, keys in the documented order, a final newline."""
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
