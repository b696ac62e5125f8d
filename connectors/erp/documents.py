"""Sales and restock documents as the ERP connectors hand them over: names, the JSON form.

The connector renders; the hub decides. A SalesDocument arrives with its kind, buyer, lines and
amounts as hub.orders.sales_documents computed them (VAT from the gross per rate, Polish rounding,
invoice or receipt, the NIP normalised and checked): nothing here computes a tax, changes an amount or
judges a NIP.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hub.kernel.errors import PermanentError
from hub.kernel.ports.erp import RestockDocument, SalesDocument
from hub.kernel.types import Address

JSON_VERSION = 1


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


def sales_json(document: SalesDocument) -> dict[str, Any]:
    """The versioned JSON form of a sales document (connectors/erp/README.md describes it)."""
    order = document.order
    buyer = document.buyer
    payment = order.payment
    pickup = order.pickup_point
    return {
        "format": "hub.sales_document",
        "version": JSON_VERSION,
        "reference": document.reference,
        "kind": document.kind,
        "issued_at": iso(document.issued_at),
        "channel": order.channel_account,
        "order": {
            "external_id": order.external_id, "revision": order.revision, "status": order.status,
            "created_at": iso(order.created_at), "updated_at": iso(order.updated_at),
        },
        "buyer": {"email": order.buyer_email, "login": order.buyer_login},
        "invoice": None if buyer is None else {
            "company": buyer.company, "nip": buyer.nip or None, "address": _address(buyer.address),
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
            "line_no": line.line_no, "sku": line.sku, "name": line.name, "quantity": line.quantity,
            "unit_price_gross": _amount(line.unit_price_gross), "vat_rate": line.vat_rate,
            "net": _amount(line.net), "vat": _amount(line.vat), "gross": _amount(line.gross),
            "offer_id": line.offer_id, "line_id": line.line_id,
        } for line in document.lines],
        "totals": {
            "net": _amount(document.net), "vat": _amount(document.vat), "gross": _amount(document.gross),
            "by_vat_rate": [{"vat_rate": r.vat_rate, "net": _amount(r.net), "vat": _amount(r.vat),
                             "gross": _amount(r.gross)} for r in document.rates],
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
