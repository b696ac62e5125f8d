"""Pure translation of WooCommerce orders and refunds to hub.kernel.ports values, and of refund requests back (no I/O).

What the hub gets from a Woo order, and why:

- ``external_id`` is the order's id (what ``/orders/{id}`` takes), not its ``number``, which
  sequential-numbering plugins rewrite.
- ``revision`` is ``date_modified_gmt`` plus a short fingerprint of what the hub maps: the
  timestamp has whole seconds only, so two changes in one second still differ.
- line ``offer_id`` is ``"pid"`` or ``"pid/vid"``, the same external ids the listings use;
  ``unit_price_gross`` is ``(total + total_tax) / quantity``: Woo keeps line totals without
  tax and after coupons, whether the shop enters prices with tax or without, and the line's
  ``price`` field is not the gross price the buyer paid. When that gross does not split into
  whole grosze per unit (a coupon's share, say 68.63 for 3), the line becomes two with the same
  ``line_id``: 1 x 22.87 and 2 x 22.88, so the lines add up to the grosz to what was charged.
- shipping lines and fee lines are order lines too, without a SKU or an offer (``sku`` and
  ``offer_id`` None), one unit at ``total + total_tax``, named by the method's title or the fee's
  name, with their own VAT rate and the shop's item id as ``line_id``; a line of 0.00 (free
  shipping) is left out. Coupon lines are not: every line's ``total`` is after discounts already
  (the reference: "Line total (after discounts)"), so a coupon is in the lines it discounted and
  ``coupon_lines`` only say which code took how much. So the lines' gross adds up to the order's
  ``total``, what the buyer paid.
- ``payment.status``: paid once ``date_paid`` is set or the order is processing/completed,
  except cash on delivery (``payment_method == "cod"``): Woo stamps ``date_paid`` on those as
  soon as they go to processing, though the money only comes with the parcel, so they stay
  unpaid until completed.
- an invoice is requested when the billing data carries a NIP in one of the meta keys of
  ``DEFAULT_NIP_META_KEYS`` (or the configured ones); the company is ``billing.company``, or
  the buyer's name for a sole trader who left it empty.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any, Literal

from hub.kernel.ports.channel import (
    ChannelOrder,
    ChannelReturn,
    InvoiceRequest,
    LineKind,
    OrderLine,
    Payment,
    RefundRequest,
    RefundResult,
    ReturnLine,
)
from hub.kernel.types import Address
from hub.kernel.vat import CODE_FOR_PERCENT, VatRate

from .mapping import format_money, parse_money

GMT_FORMAT = "%Y-%m-%dT%H:%M:%S"
CURSOR_VERSION = "woo1"
_CENT = Decimal("0.01")
_ZERO = Decimal("0")
# statuses that are not orders yet (or any more): block checkout's carts and the bin
NOT_ORDERS = frozenset({"checkout-draft", "auto-draft", "trash"})
PAID_STATUSES = frozenset({"processing", "completed"})
CASH_ON_DELIVERY = "cod"
# meta keys checkout plugins keep a buyer's NIP under, tried in this order (case-insensitive)
DEFAULT_NIP_META_KEYS: tuple[str, ...] = (
    "_billing_nip", "billing_nip", "_nip", "nip",
    "_billing_vat_number", "billing_vat_number", "_vat_number", "vat_number",
)
SHIPPING_NAME = "Dostawa"  # a shipping line's name when the shop gives no method title
FEE_NAME = "Opłata"  # a fee line's name when the fee has none
REFUNDED = "REFUNDED"  # ChannelReturn.status of a refund made in the shop (mappings/order_status.toml)
_HUB_MARK = "[hub:"
_STATUS_SLUG = re.compile(r"^[a-z0-9_-]{1,20}$")
# statuses that end an order on the shop's side: a status push from the hub must not reopen one
CLOSED_BY_SHOP = frozenset({"cancelled", "refunded", "failed", "trash"})
_SAFE_KEY = re.compile(r"^[A-Za-z0-9:/._@+-]{1,120}$")


# --- small readers --------------------------------------------------------------------------


def parse_gmt(value: Any) -> datetime | None:
    """A ``*_gmt`` field (``2024-06-11T10:00:05``, no offset) as an aware UTC datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.removesuffix("Z"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_gmt(moment: datetime) -> str:
    """The GMT form the API takes with ``dates_are_gmt=true``: whole seconds, no offset."""
    return moment.astimezone(UTC).strftime(GMT_FORMAT)


def whole_second(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def _money(value: Any) -> Decimal:
    return parse_money(value) or _ZERO


def _text(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def parse_id(value: Any) -> int | None:
    """A WooCommerce id (a positive integer, or its digits as text); None otherwise."""
    number = _int(value)
    return number if number is not None and number > 0 else None


def _list(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _part(order: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = order.get(key)
    return value if isinstance(value, Mapping) else {}


def offer_id(product_id: Any, variation_id: Any) -> str | None:
    """``"pid"`` or ``"pid/vid"`` as in the listings; None once the product was deleted (id 0)."""
    pid, vid = _int(product_id), _int(variation_id)
    if not pid:
        return None
    return f"{pid}/{vid}" if vid else str(pid)


def is_order(order: Mapping[str, Any]) -> bool:
    """False for checkout drafts (carts the block checkout saves) and binned orders."""
    return order.get("status") not in NOT_ORDERS


def status_slug(status: str) -> str | None:
    """The value ``PUT /orders/{id}`` takes: ``wc-completed`` (the database form) becomes ``completed``."""
    slug = status.strip().lower().removeprefix("wc-")
    return slug if _STATUS_SLUG.match(slug) else None


# --- revisions and the polling position ---------------------------------------------------


def find_nip(meta: Any, keys: Sequence[str] = DEFAULT_NIP_META_KEYS) -> str | None:
    """The first non-empty value under ``keys``; spaces, dashes and a leading ``PL`` removed."""
    values: dict[str, str] = {}
    for entry in _list(meta):
        key, value = entry.get("key"), _text(entry.get("value"))
        if isinstance(key, str) and value:
            values.setdefault(key.lower(), value)
    for key in keys:
        if raw := values.get(key.lower()):
            compact = re.sub(r"[\s.-]", "", raw).upper()
            return compact[2:] if compact.startswith("PL") and compact[2:].isdigit() else compact
    return None


def fingerprint(order: Mapping[str, Any], nip_keys: Sequence[str] = DEFAULT_NIP_META_KEYS) -> str:
    """A short hash of what the hub maps, so a change within one second still shows.

    Only mapped fields count: plugins add computed fields to responses that may change on
    every read, and they must not look like a new revision.
    """
    subset = {key: order.get(key) for key in (
        "status", "currency", "total", "total_tax", "shipping_total", "discount_total", "date_paid_gmt",
        "date_completed_gmt", "payment_method", "transaction_id", "billing", "shipping", "customer_note")}
    subset["line_items"] = [[item.get(k) for k in ("id", "product_id", "variation_id", "quantity", "total",
                                                   "total_tax", "sku")] for item in _list(order.get("line_items"))]
    subset["shipping_lines"] = [[line.get(k) for k in ("id", "method_id", "method_title", "total", "total_tax")]
                                for line in _list(order.get("shipping_lines"))]
    subset["fee_lines"] = [[line.get(k) for k in ("id", "total", "total_tax")]
                           for line in _list(order.get("fee_lines"))]
    subset["refunds"] = [[refund.get("id"), refund.get("total")] for refund in _list(order.get("refunds"))]
    subset["nip"] = find_nip(order.get("meta_data"), nip_keys)
    data = json.dumps(subset, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(data.encode()).hexdigest()[:10]


def revision(order: Mapping[str, Any], nip_keys: Sequence[str] = DEFAULT_NIP_META_KEYS) -> str:
    return f"{order.get('date_modified_gmt')}/{fingerprint(order, nip_keys)}"


@dataclass(frozen=True)
class Position:
    """How far the order list has been read: the last ``date_modified_gmt`` seen, and which
    orders (with their fingerprints) were seen at exactly that second.

    Woo's timestamps have whole seconds, so several orders can share the last one and more
    may still arrive in it: the next poll asks again from that second and skips only what it
    has seen in the same version (a second change within the second has a new fingerprint).
    """

    at: datetime
    seen: Mapping[str, str] = field(default_factory=dict)

    def is_new(self, moment: datetime, order_id: str, print_: str) -> bool:
        return moment > self.at or (moment == self.at and self.seen.get(order_id) != print_)

    def after(self, moment: datetime, order_id: str, print_: str) -> Position:
        if moment > self.at:
            return Position(moment, {order_id: print_})
        return Position(self.at, {**self.seen, order_id: print_})

    def encode(self) -> str:
        """``woo1|2024-06-11T10:00:05|101=3fa2b1c4d5,102=...``: readable in ``hub`` output and logs."""
        seen = ",".join(f"{k}={self.seen[k]}" for k in sorted(self.seen, key=lambda k: (len(k), k)))
        return f"{CURSOR_VERSION}|{format_gmt(self.at)}|{seen}"

    @classmethod
    def decode(cls, cursor: str) -> Position:
        """Raises ValueError for anything ``encode`` did not write."""
        version, _, rest = cursor.partition("|")
        stamp, _, seen = rest.partition("|")
        at = parse_gmt(stamp)
        if version != CURSOR_VERSION or at is None:
            raise ValueError(f"not a WooCommerce order cursor: {cursor[:80]!r}")
        pairs = [pair.partition("=") for pair in seen.split(",") if pair]
        if any(not key.isdigit() or not value for key, _, value in pairs):
            raise ValueError(f"not a WooCommerce order cursor: {cursor[:80]!r}")
        return cls(at, {key: value for key, _, value in pairs})


def event_kind(order: Mapping[str, Any], start: Position) -> Literal["created", "updated", "cancelled"]:
    """cancelled by status; created when the order was placed after the poll's start position."""
    if order.get("status") == "cancelled":
        return "cancelled"
    created = parse_gmt(order.get("date_created_gmt"))
    if created is not None and (created > start.at or (created == start.at and str(order.get("id")) not in start.seen)):
        return "created"
    return "updated"


# --- orders -----------------------------------------------------------------------------------


def _vat_rates(order: Mapping[str, Any]) -> dict[int, VatRate]:
    """Tax rate id -> Polish VAT rate, from the order's tax lines (``rate_percent``)."""
    rates: dict[int, VatRate] = {}
    for line in _list(order.get("tax_lines")):
        rate_id, percent = _int(line.get("rate_id")), line.get("rate_percent")
        if rate_id is None or not isinstance(percent, int | float) or isinstance(percent, bool):
            continue
        if (rate := CODE_FOR_PERCENT.get(Decimal(str(percent)))) is not None:
            rates[rate_id] = rate
    return rates


def _line_vat(item: Mapping[str, Any], rates: Mapping[int, VatRate]) -> VatRate | None:
    ids = {_int(tax.get("id")) for tax in _list(item.get("taxes"))}
    if len(ids) != 1:
        return None  # untaxed, or several (compound) rates: the ERP decides
    (rate_id,) = ids
    return rates.get(rate_id) if rate_id is not None else None


def line_gross(item: Mapping[str, Any]) -> Decimal:
    """What a line charged: its total plus its tax, both after coupons, to the grosz."""
    return (_money(item.get("total")) + _money(item.get("total_tax"))).quantize(_CENT, ROUND_HALF_UP)


def unit_prices(gross: Decimal, quantity: int) -> list[tuple[int, Decimal]]:
    """(units, unit price) whose sum is ``gross`` exactly: one price when the grosze divide by the
    quantity, else the lower price for most units and a grosz more for the rest."""
    base = (gross / quantity).quantize(_CENT, ROUND_FLOOR)
    rest = int((gross - base * quantity) / _CENT)  # 0 <= rest < quantity
    if rest == 0:
        return [(quantity, base)]
    return [(quantity - rest, base), (rest, base + _CENT)]


def _line_id(item: Mapping[str, Any]) -> str | None:
    return str(item["id"]) if _int(item.get("id")) else None


def _charge(item: Mapping[str, Any], name: str | None, default: str, rates: Mapping[int, VatRate],
            kind: LineKind) -> OrderLine | None:
    """A shipping or fee line as one unit without a SKU; None when it charged nothing."""
    gross = line_gross(item)
    if gross == 0:
        return None
    return OrderLine(sku=None, offer_id=None, name=name or default, quantity=1, unit_price_gross=gross,
                     vat_rate=_line_vat(item, rates), line_id=_line_id(item), kind=kind)


def order_lines(order: Mapping[str, Any]) -> list[OrderLine]:
    """The products, then the shipping lines, then the fees; their gross adds up to the order's total."""
    rates = _vat_rates(order)
    lines = []
    for item in _list(order.get("line_items")):
        quantity = _int(item.get("quantity")) or 0
        if quantity <= 0:
            continue
        for units, price in unit_prices(line_gross(item), quantity):
            lines.append(OrderLine(
                sku=_text(item.get("sku")),
                offer_id=offer_id(item.get("product_id"), item.get("variation_id")),
                name=_text(item.get("name")) or "",
                quantity=units,
                unit_price_gross=price,
                vat_rate=_line_vat(item, rates),
                line_id=_line_id(item),
            ))
    for line in _list(order.get("shipping_lines")):
        title = _text(line.get("method_title")) or _text(line.get("method_id"))
        if (charge := _charge(line, title, SHIPPING_NAME, rates, "shipping")) is not None:
            lines.append(charge)
    for line in _list(order.get("fee_lines")):
        if (charge := _charge(line, _text(line.get("name")), FEE_NAME, rates, "fee")) is not None:
            lines.append(charge)
    return lines


def address(part: Mapping[str, Any], *, email: str | None = None, phone: str | None = None) -> Address | None:
    """A billing or shipping block; None when it holds no street and no city (virtual goods)."""
    street = " ".join(filter(None, (_text(part.get("address_1")), _text(part.get("address_2")))))
    city = _text(part.get("city"))
    if not street and not city:
        return None
    company = _text(part.get("company"))
    name = " ".join(filter(None, (_text(part.get("first_name")), _text(part.get("last_name"))))) or company or ""
    return Address(name=name, street=street, city=city or "", postal_code=_text(part.get("postcode")) or "",
                   country=(_text(part.get("country")) or "PL").upper(), company=company,
                   phone=_text(part.get("phone")) or phone, email=email)


def delivery_address(order: Mapping[str, Any]) -> Address | None:
    """The shipping address; the billing one when the shop kept none (e.g. local pickup)."""
    billing = _part(order, "billing")
    email, phone = _text(billing.get("email")), _text(billing.get("phone"))
    return address(_part(order, "shipping"), email=email, phone=phone) or address(billing, email=email, phone=phone)


def delivery_method(order: Mapping[str, Any]) -> str | None:
    """The first shipping line's title as the seller named it (e.g. "Paczkomaty InPost"), else its method id."""
    lines = _list(order.get("shipping_lines"))
    if not lines:
        return None
    return _text(lines[0].get("method_title")) or _text(lines[0].get("method_id"))


def refunded_total(order: Mapping[str, Any]) -> Decimal:
    """Money already given back, from the order's refund summary (whose totals are negative)."""
    return sum((abs(_money(refund.get("total"))) for refund in _list(order.get("refunds"))), _ZERO)


def payment(order: Mapping[str, Any]) -> Payment:
    method = _text(order.get("payment_method"))
    cod = method == CASH_ON_DELIVERY
    total = _money(order.get("total"))
    refunded = refunded_total(order)
    status: Literal["unpaid", "paid", "refunded", "partially_refunded"]
    if order.get("status") == "refunded" or (refunded > 0 and refunded >= total):
        status = "refunded"
    elif refunded > 0:
        status = "partially_refunded"
    elif cod:
        status = "paid" if order.get("status") == "completed" else "unpaid"
    elif order.get("date_paid_gmt") or order.get("status") in PAID_STATUSES:
        status = "paid"
    else:
        status = "unpaid"
    return Payment(status=status, amount=total, currency=_text(order.get("currency")) or "PLN", method=method,
                   cash_on_delivery=cod, payment_id=_text(order.get("transaction_id")) or str(order.get("id")))


def invoice(order: Mapping[str, Any], nip_keys: Sequence[str] = DEFAULT_NIP_META_KEYS) -> InvoiceRequest | None:
    """An invoice for the NIP in the meta data; without a NIP a company name alone asks for none."""
    nip = find_nip(order.get("meta_data"), nip_keys)
    if not nip:
        return None
    billing = _part(order, "billing")
    email, phone = _text(billing.get("email")), _text(billing.get("phone"))
    where = address(billing, email=email, phone=phone)
    company = _text(billing.get("company")) or (where.name if where else None) or ""
    if where is None:
        where = Address(name=company, street="", city="", postal_code="",
                        country=(_text(billing.get("country")) or "PL").upper(), company=company or None, email=email)
    return InvoiceRequest(company=company, nip=nip, address=where)


def channel_order(order: Mapping[str, Any], account: str,
                  nip_keys: Sequence[str] = DEFAULT_NIP_META_KEYS) -> ChannelOrder:
    created = parse_gmt(order.get("date_created_gmt"))
    updated = parse_gmt(order.get("date_modified_gmt")) or created
    if created is None or updated is None:
        raise ValueError(f"WooCommerce order {order.get('id')!r} has no date_created_gmt")
    return ChannelOrder(
        channel_account=account,
        external_id=str(order["id"]),
        revision=revision(order, nip_keys),
        status=str(order.get("status") or ""),
        lines=order_lines(order),
        buyer_email=_text(_part(order, "billing").get("email")),
        buyer_login=None,  # Woo knows a customer id at most, not a login the seller would recognise
        delivery_address=delivery_address(order),
        pickup_point=None,
        delivery_method=delivery_method(order),
        payment=payment(order),
        invoice=invoice(order, nip_keys),
        currency=_text(order.get("currency")) or "PLN",
        created_at=created,
        updated_at=updated,
        raw=dict(order),
    )


# --- refunds ----------------------------------------------------------------------------------


class RefundProblem(ValueError):
    """A refund request the shop would refuse or get wrong; nothing was sent."""


def hub_mark(idempotency_key: str) -> str:
    """What the refund's reason carries, so a retry finds the refund instead of making another.

    The key itself when WordPress keeps it as it is (it strips tags and %-escapes from text
    fields), so the seller can read which job made the refund; otherwise a hash of it.
    """
    if _SAFE_KEY.match(idempotency_key):
        return f"{_HUB_MARK}{idempotency_key}]"
    return f"{_HUB_MARK}h-{hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]}]"


def made_by_hub(refund: Mapping[str, Any]) -> bool:
    return _HUB_MARK in str(refund.get("reason") or "")


def has_refunds_by_hand(order: Mapping[str, Any]) -> bool:
    """Whether the order's refund summary lists a refund the hub did not make."""
    return any(not made_by_hub(refund) for refund in _list(order.get("refunds")))


def find_refund(refunds: Iterable[Mapping[str, Any]], idempotency_key: str) -> Mapping[str, Any] | None:
    mark = hub_mark(idempotency_key)
    return next((refund for refund in refunds if mark in str(refund.get("reason") or "")), None)


def refund_result(refund: Mapping[str, Any]) -> RefundResult:
    """REFUNDED: the payment gateway sent the money back; RECORDED: the shop only booked the refund."""
    return RefundResult(external_id=str(refund["id"]), status=REFUNDED if refund.get("refunded_payment") is True
                        else "RECORDED")


def refunded_item_id(item: Mapping[str, Any]) -> int | None:
    """The order line a refund line refunds (Woo's ``_refunded_item_id`` meta entry)."""
    for meta in _list(item.get("meta_data")):
        if meta.get("key") == "_refunded_item_id":
            return _int(meta.get("value"))
    return None


def refunded_quantities(refunds: Iterable[Mapping[str, Any]]) -> dict[int, int]:
    done: dict[int, int] = {}
    for refund in refunds:
        for item in _list(refund.get("line_items")):
            if (line := refunded_item_id(item)) is not None:
                done[line] = done.get(line, 0) + abs(_int(item.get("quantity")) or 0)
    return done


def _match(items: Sequence[Mapping[str, Any]], line: ReturnLine, left: Mapping[int, int]) -> Mapping[str, Any]:
    if line.line_id is not None:
        found = next((item for item in items if str(item.get("id")) == str(line.line_id)), None)
        if found is None:
            raise RefundProblem(f"the order has no line {line.line_id}")
        return found
    for item in items:
        same_offer = line.offer_id is not None and offer_id(item.get("product_id"), item.get("variation_id")) == \
            line.offer_id
        same_sku = line.sku is not None and _text(item.get("sku")) == line.sku
        if (same_offer or same_sku) and left.get(int(item["id"]), 0) > 0:
            return item
    raise RefundProblem(f"no order line left to refund for offer {line.offer_id!r} / SKU {line.sku!r}")


def _split(item: Mapping[str, Any], quantity: int, gross: Decimal | None) -> tuple[Decimal, Decimal, list[Any]]:
    """(gross, net, [(tax rate id, tax)]) for ``quantity`` units: Woo books refunds per line
    without tax plus the tax per rate, in the same proportions as the line."""
    ordered = _int(item.get("quantity")) or 1
    line_gross = _money(item.get("total")) + _money(item.get("total_tax"))
    target = gross if gross is not None else (line_gross * quantity / ordered).quantize(_CENT, ROUND_HALF_UP)
    if line_gross <= 0:
        return target, target, []
    taxes = [(_int(tax.get("id")), _money(tax.get("total"))) for tax in _list(item.get("taxes"))]
    parts = [(rate_id, (tax * target / line_gross).quantize(_CENT, ROUND_HALF_UP))
             for rate_id, tax in taxes if rate_id and tax]
    return target, target - sum((part for _, part in parts), _ZERO), parts


def refund_body(order: Mapping[str, Any], refunds: Sequence[Mapping[str, Any]], request: RefundRequest, *,
                idempotency_key: str, api_refund: bool) -> dict[str, Any]:
    """``POST /orders/{id}/refunds``: the gross ``amount`` (what Woo gives back), the lines with
    their net and tax parts, and the reason marked with the key.

    ``api_restock`` is always false: returned goods go back through the ERP, whose stock the
    hub pushes, so the shop must not count them a second time.
    """
    currency = _text(order.get("currency")) or "PLN"
    if request.currency != currency:
        raise RefundProblem(f"refund in {request.currency} but the order was paid in {currency}")
    items = _list(order.get("line_items"))
    done = refunded_quantities(refunds)
    left = {int(item["id"]): (_int(item.get("quantity")) or 0) - done.get(int(item["id"]), 0)
            for item in items if _int(item.get("id"))}
    lines: list[dict[str, Any]] = []
    lines_gross = _ZERO
    for line in request.lines:
        if line.quantity < 1:
            raise RefundProblem(f"quantity {line.quantity} to refund is not positive")
        item = _match(items, line, left)
        item_id = int(item["id"])
        if line.quantity > left.get(item_id, 0):
            raise RefundProblem(f"line {item_id} has {left.get(item_id, 0)} unit(s) left to refund, "
                                f"not {line.quantity}")
        left[item_id] -= line.quantity
        gross, net, taxes = _split(item, line.quantity, line.amount_gross)
        lines_gross += gross
        entry: dict[str, Any] = {"id": item_id, "quantity": line.quantity, "refund_total": format_money(net)}
        if taxes:
            entry["refund_tax"] = [{"id": rate_id, "refund_total": format_money(tax)} for rate_id, tax in taxes]
        lines.append(entry)
    amount = request.amount if request.amount > 0 else lines_gross
    if amount <= 0:
        raise RefundProblem("nothing to refund: no amount and no lines")
    remaining = _money(order.get("total")) - sum((_money(refund.get("amount")) for refund in refunds), _ZERO)
    if amount > remaining:
        raise RefundProblem(f"refund of {format_money(amount)} {currency} exceeds the "
                            f"{format_money(max(remaining, _ZERO))} {currency} left to refund")
    reason = " ".join(filter(None, (request.reason.strip(), hub_mark(idempotency_key))))
    body: dict[str, Any] = {"amount": format_money(amount), "reason": reason, "api_refund": api_refund,
                            "api_restock": False}
    if lines:
        body["line_items"] = lines
    return body


# Payment methods that never refund through the API. The reference only says that api_refund "When true, the
# payment gateway API is used to generate the refund. Default is `true`." (_order-refunds.md); whether a gateway
# can is the gateway's to declare: WC_Payment_Gateway's default is supports = ['products'], and WooCommerce's
# offline gateways (direct bank transfer, check payments, cash on delivery) add no 'refunds', so the shop answers
# 500 woocommerce_rest_cannot_create_order_refund "The payment gateway for this order does not support automatic
# refunds." (and "... does not exist." for an order without one).
OFFLINE_GATEWAYS = frozenset({"bacs", "cheque", "cod"})


def payment_method_name(order: Mapping[str, Any]) -> str:
    """The order's payment method as the seller sees it and as WooCommerce names it: 'Przelew bankowy (bacs)'."""
    method, title = _text(order.get("payment_method")), _text(order.get("payment_method_title"))
    if method is None:
        return f"{title} (no payment gateway)" if title else "no payment method"
    return f"{title} ({method})" if title and title != method else method


def refunds_through_api(order: Mapping[str, Any]) -> bool:
    """False when the order's payment method cannot give money back through the API (an offline gateway, or
    none); True means the shop will ask the gateway, which may still refuse."""
    method = _text(order.get("payment_method"))
    return method is not None and method not in OFFLINE_GATEWAYS


def refund_by_hand(order: Mapping[str, Any], body: Mapping[str, Any], idempotency_key: str,
                   shop_answer: str | None = None) -> str:
    """One line for the seller: the order's payment method cannot refund through the API, so the money goes
    back by hand and the return is then marked refunded; a refund recorded in the shop too must carry the
    hub's mark, or the hub would import it as another return."""
    amount = f"{body.get('amount')} {_text(order.get('currency')) or 'PLN'}"
    why = f" (the shop answered: {' '.join(shop_answer.split())})" if shop_answer else ""
    return (f"WooCommerce order {order.get('id')} was paid with {payment_method_name(order)}, which cannot refund "
            f"through the API{why or ' (it does not support automatic refunds)'}: return {amount} to the buyer by "
            f"hand, then mark the return refunded (hub returns refunded ID --ref TRANSFER); to show it in the shop "
            f"too, use \"Refund manually\" there with {hub_mark(idempotency_key)} in the reason")


def channel_return(refund: Mapping[str, Any], order_id: str, account: str) -> ChannelReturn:
    """A refund made in the shop: the money is back already, so the hub records it as refunded."""
    created = parse_gmt(refund.get("date_created_gmt"))
    if created is None:
        raise ValueError(f"WooCommerce refund {refund.get('id')!r} has no date_created_gmt")
    lines = []
    for item in _list(refund.get("line_items")):
        quantity = abs(_int(item.get("quantity")) or 0)
        gross = abs(_money(item.get("total")) + _money(item.get("total_tax")))
        if quantity == 0 and gross == 0:
            continue
        line = refunded_item_id(item)
        lines.append(ReturnLine(sku=_text(item.get("sku")),
                                offer_id=offer_id(item.get("product_id"), item.get("variation_id")),
                                quantity=quantity, line_id=str(line) if line is not None else None,
                                amount_gross=gross))
    return ChannelReturn(channel_account=account, external_id=str(refund["id"]), order_external_id=order_id,
                         status=REFUNDED, lines=lines, reason=_text(refund.get("reason")), created_at=created,
                         updated_at=created, refunded=True)


# --- tracking numbers: a customer note and the hub's order meta ---------------------------------------------
#
# The REST API v3 reference has no shipment tracking: it documents order notes (_order-notes.md: "customer_note
# ... If true, the note will be shown to customers and they will be notified") and order meta_data ({id, key,
# value}, value a string). The Shipment Tracking extension's endpoint and meta are not in the reference the
# hub works from, and a shop without that paid extension answers its route with 404 rest_no_route; so the buyer
# is told in a customer note, and the numbers are kept, for the hub and for other plugins, in the order meta
# TRACKING_META_KEY as a JSON string.

TRACKING_META_KEY = "_hub_tracking"
# the hub's operator names (hub.kernel.ports.carrier.Booking.operator) as the buyer reads them
CARRIER_NAMES: dict[str, str] = {
    "inpost": "InPost", "dpd": "DPD", "poczta-polska": "Poczta Polska", "dhl": "DHL", "ups": "UPS", "gls": "GLS",
    "fedex": "FedEx", "orlen": "ORLEN Paczka", "allegro-one": "Allegro One",
}
NOTE_HEADLINE = "Twoja przesyłka została nadana."


def tracking_key(number: Any) -> str:
    """How two tracking numbers compare: without blanks, upper case; what is shown stays as given."""
    return "".join(str(number or "").split()).upper()


def tracking_numbers(numbers: Iterable[str]) -> list[str]:
    """The notice's numbers, trimmed, each once, in order; ValueError for an empty one or none at all."""
    out: list[str] = []
    seen: set[str] = set()
    for raw in numbers:
        number = str(raw).strip()
        if not number:
            raise ValueError("an empty tracking number")
        if tracking_key(number) not in seen:
            seen.add(tracking_key(number))
            out.append(number)
    if not out:
        raise ValueError("no tracking number to add")
    return out


def carrier_name(operator: str) -> str | None:
    """The carrier's name for the buyer; None for "other" (no name is known)."""
    if operator in CARRIER_NAMES:
        return CARRIER_NAMES[operator]
    return None if operator.strip() in ("", "other") else operator.strip()


def tracking_note(operator: str, numbers: Sequence[str]) -> dict[str, Any]:
    """POST /orders/{id}/notes: a customer note (the shop e-mails it to the buyer), one line per fact, each
    number on its own line so that nothing sticks to it when the buyer copies it."""
    lines = [NOTE_HEADLINE]
    name = carrier_name(operator)
    if name:
        lines.append(f"Przewoźnik: {name}")
    label = "Numer przesyłki" if len(numbers) == 1 else "Numery przesyłek"
    lines.append(f"{label}:")
    lines += list(numbers)
    return {"note": "\n".join(lines), "customer_note": True}


def numbers_in_notes(notes: Iterable[Mapping[str, Any]], numbers: Sequence[str]) -> set[str]:
    """The keys of ``numbers`` that a customer note shows already (ours, or one the seller wrote by hand),
    each as a whole word: 123 is not in 01234."""
    texts = [str(n.get("note") or "") for n in notes if isinstance(n, Mapping) and n.get("customer_note") is True]
    found = set()
    for number in numbers:
        pattern = re.compile(r"(?<![0-9A-Za-z])" + re.escape(number) + r"(?![0-9A-Za-z])", re.IGNORECASE)
        if any(pattern.search(text) for text in texts):
            found.add(tracking_key(number))
    return found


def tracking_meta(order: Mapping[str, Any]) -> list[dict[str, str]]:
    """The entries of the hub's tracking meta ({"number", "operator", "carrier"}); an unreadable value (edited
    by hand) counts as none, and the next write replaces it."""
    for meta in _list(order.get("meta_data")):
        if meta.get("key") == TRACKING_META_KEY:
            try:
                value = json.loads(meta.get("value")) if isinstance(meta.get("value"), str) else meta.get("value")
            except ValueError:
                return []
            if isinstance(value, list):
                return [{k: str(v) for k, v in e.items() if isinstance(v, str)} for e in value
                        if isinstance(e, Mapping) and isinstance(e.get("number"), str)]
            return []
    return []


def tracking_meta_update(existing: Sequence[Mapping[str, str]], operator: str,
                         numbers: Sequence[str]) -> dict[str, Any] | None:
    """PUT /orders/{id} with the meta entry holding every number, the ones it has and ``numbers``; None when
    it has them all. Without the entry's id: the shop replaces the value of the key (an absolute write, so a
    repeat is harmless)."""
    known = {tracking_key(e.get("number")) for e in existing}
    added = [{"number": n, "operator": operator, "carrier": carrier_name(operator) or ""}
             for n in numbers if tracking_key(n) not in known]
    if not added:
        return None
    value = json.dumps([*[dict(e) for e in existing], *added], ensure_ascii=False, separators=(",", ":"))
    return {"meta_data": [{"key": TRACKING_META_KEY, "value": value}]}
