"""Pure translation of Allegro orders, customer returns and refunds to and from hub.kernel.ports types.

No I/O and no clock, so that a retried job rebuilds the very same refund body (and so the very
same commandId). Money is Decimal, times are timezone-aware UTC. Schemas (swagger.yaml):
OrderEvent, CheckoutForm, CustomerReturn, InitializeRefund, RefundDetails.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from connectors.allegro.mapping import parse_amount
from hub.kernel.ports.channel import (
    ChannelOrder,
    ChannelReturn,
    InvoiceRequest,
    OrderEvent,
    OrderLine,
    Payment,
    RefundRequest,
    ReturnLine,
)
from hub.kernel.types import Address, PickupPoint
from hub.kernel.vat import CODE_FOR_PERCENT, VatRate

# GET /order/events: every type the journal has (OrderEventType); limit <= 1000
EVENT_TYPES = ("BOUGHT", "FILLED_IN", "READY_FOR_PROCESSING", "BUYER_CANCELLED", "BUYER_MODIFIED",
               "AUTO_CANCELLED", "FULFILLMENT_STATUS_CHANGED")
CANCEL_EVENTS = frozenset({"BUYER_CANCELLED", "AUTO_CANCELLED"})
MAX_EVENTS_PAGE = 1000
MAX_FORMS_PAGE = 100  # GET /order/checkout-forms: limit <= 100
MAX_RETURNS_PAGE = 1000  # GET /order/customer-returns: limit <= 1000
MAX_REFUNDS_PAGE = 100  # GET /payments/refunds: limit <= 100

# PUT .../fulfillment: CheckoutFormFulfillmentStatus minus RETURNED, which only the vendor sets
SETTABLE_FULFILLMENT = frozenset({"NEW", "PROCESSING", "READY_FOR_SHIPMENT", "READY_FOR_PICKUP", "SENT",
                                  "PICKED_UP", "CANCELLED", "SUSPENDED"})
# how far along the fulfillment statuses are (CheckoutFormFulfillmentStatus): a push must never set a
# status behind the one the form shows (SENT is set by Allegro itself when a tracking number is added)
FULFILLMENT_RANK = {"NEW": 0, "PROCESSING": 1, "READY_FOR_SHIPMENT": 2, "READY_FOR_PICKUP": 2, "SENT": 3,
                    "PICKED_UP": 4, "RETURNED": 5}
REFUND_REASONS = frozenset({"REFUND", "COMPLAINT", "PRODUCT_NOT_AVAILABLE", "PAID_VALUE_TOO_LOW", "OVERPAID",
                            "CANCELLED_BY_BUYER", "NOT_COLLECTED"})
# CustomerReturn.status values that mean the money went back (the vendor or the seller refunded)
REFUNDED_RETURN_STATUSES = frozenset({"FINISHED", "FINISHED_APT"})
REJECTION_REASON_MAX = 250  # CustomerReturnRefundRejectionRequest.rejection.reason

# Fixed namespace: uuid5(namespace, job key) gives every attempt of a refund job the same commandId.
REFUND_NAMESPACE = uuid.UUID("8c0f2a5e-61d4-4b7a-9e3c-2f5d7a1b9c40")
_CENT = Decimal("0.01")


# --- times -----------------------------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp as aware UTC (the vendor sends ``...Z`` and ``...+02:00``); None if absent/bad."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_time(value: datetime) -> str:
    """A query-parameter timestamp in the vendor's own form: UTC, milliseconds, ``Z`` (floored, so a
    ``gte`` bound never excludes the instant it was computed from)."""
    at = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


# --- the order journal -----------------------------------------------------------------------


def event_kind(event_type: str) -> Literal["created", "updated", "cancelled"]:
    """BOUGHT opens an order, the cancellations close it, everything else (and any type the vendor
    adds later) is an update: the hub reads the order itself in every case."""
    if event_type == "BOUGHT":
        return "created"
    if event_type in CANCEL_EVENTS:
        return "cancelled"
    return "updated"


def order_event(raw: Mapping[str, Any]) -> OrderEvent | None:
    """One OrderEvent; None for an entry that names no checkout form (nothing to read)."""
    form = ((raw.get("order") or {}).get("checkoutForm")) or {}
    form_id = form.get("id")
    occurred = parse_time(raw.get("occurredAt"))
    if not form_id or raw.get("id") is None or occurred is None:
        return None
    revision = form.get("revision")
    return OrderEvent(cursor=str(raw["id"]), kind=event_kind(str(raw.get("type") or "")), external_id=str(form_id),
                      occurred_at=occurred, revision=str(revision) if revision else None)


# --- checkout forms -> ChannelOrder --------------------------------------------------------------


def _amount(price: Any) -> Decimal | None:
    return parse_amount(price.get("amount")) if isinstance(price, Mapping) else None


def vat_rate(tax: Any) -> VatRate | None:
    """CheckoutFormLineItemTax.rate ("23.00") as the hub's rate; None when absent or not a Polish rate."""
    if not isinstance(tax, Mapping) or tax.get("rate") in (None, ""):
        return None
    try:
        return CODE_FOR_PERCENT.get(Decimal(str(tax["rate"])))
    except InvalidOperation:
        return None


def _name(first: Any, last: Any, fallback: Any = None) -> str:
    name = " ".join(str(p).strip() for p in (first, last) if p and str(p).strip())
    return name or (str(fallback) if fallback else "")


def _delivery_address(delivery: Mapping[str, Any], email: str | None) -> Address | None:
    address = delivery.get("address")
    if not isinstance(address, Mapping):
        return None
    return Address(
        name=_name(address.get("firstName"), address.get("lastName"), address.get("companyName")),
        street=address.get("street") or "", city=address.get("city") or "",
        postal_code=address.get("zipCode") or "", country=address.get("countryCode") or "PL",
        company=address.get("companyName") or None, phone=address.get("phoneNumber") or None, email=email,
    )


def _pickup_point(delivery: Mapping[str, Any]) -> PickupPoint | None:
    point = delivery.get("pickupPoint")
    if not isinstance(point, Mapping) or not point.get("id"):
        return None
    address = point.get("address")
    where = None
    if isinstance(address, Mapping):
        where = Address(name=point.get("name") or str(point["id"]), street=address.get("street") or "",
                        city=address.get("city") or "", postal_code=address.get("zipCode") or "",
                        country=address.get("countryCode") or "PL")
    return PickupPoint(id=str(point["id"]), name=point.get("name") or None, address=where)


def invoice_nip(company: Mapping[str, Any]) -> str:
    """The company's tax id as the buyer typed it (the hub validates it): ids[] PL_NIP first, then the
    deprecated taxId, then any other id (a foreign VAT number the hub will flag)."""
    ids = [i for i in company.get("ids") or [] if isinstance(i, Mapping) and i.get("value")]
    for tax_id in ids:
        if tax_id.get("type") == "PL_NIP":
            return str(tax_id["value"])
    if company.get("taxId"):
        return str(company["taxId"])
    return str(ids[0]["value"]) if ids else ""


def _invoice(form: Mapping[str, Any]) -> InvoiceRequest | None:
    """A company invoice request. A private person's invoice (naturalPerson) has no NIP: it is not an
    InvoiceRequest in the hub's terms, so it stays in ``raw`` only."""
    invoice = form.get("invoice")
    if not isinstance(invoice, Mapping) or not invoice.get("required"):
        return None
    address = invoice.get("address")
    if not isinstance(address, Mapping) or not isinstance(address.get("company"), Mapping):
        return None
    company = address["company"]
    name = str(company.get("name") or "")
    return InvoiceRequest(company=name, nip=invoice_nip(company), address=Address(
        name=name, street=address.get("street") or "", city=address.get("city") or "",
        postal_code=address.get("zipCode") or "", country=address.get("countryCode") or "PL", company=name or None))


def _payment(form: Mapping[str, Any], total: Decimal, currency: str) -> Payment:
    """Paid when the buyer's money reached Allegro: paidAmount covers the total (cash on delivery never
    has it: the courier collects), or finishedAt without an amount for a non-COD payment."""
    payment = form.get("payment") if isinstance(form.get("payment"), Mapping) else {}
    kind = payment.get("type")
    cod = kind == "CASH_ON_DELIVERY"
    paid_amount = _amount(payment.get("paidAmount"))
    if paid_amount is not None:
        paid = paid_amount > 0 and paid_amount >= total
    else:
        paid = bool(payment.get("finishedAt")) and not cod and kind is not None
    return Payment(status="paid" if paid else "unpaid", amount=total, currency=currency,
                   method=str(kind) if kind else None, cash_on_delivery=cod,
                   payment_id=str(payment["id"]) if payment.get("id") else None)


def order_line(item: Mapping[str, Any]) -> OrderLine:
    offer = item.get("offer") or {}
    external = (offer.get("external") or {}).get("id")
    price = _amount(item.get("price"))
    if price is None:
        raise ValueError(f"line item {item.get('id')} has no price")
    return OrderLine(sku=str(external) if external else None, offer_id=str(offer["id"]) if offer.get("id") else None,
                     name=str(offer.get("name") or ""), quantity=int(item.get("quantity") or 0),
                     unit_price_gross=price, vat_rate=vat_rate(item.get("tax")),
                     line_id=str(item["id"]) if item.get("id") else None)


def delivery_line(delivery: Mapping[str, Any]) -> OrderLine | None:
    """What the buyer paid for delivery (``delivery.cost``; part of ``summary.totalToPay``) as a shipping
    line; None when free (Allegro Smart!, free shipping). Allegro states no VAT rate for it: the
    document gives it the goods' rate."""
    cost = _amount(delivery.get("cost"))
    if cost is None or cost == 0:
        return None
    method = delivery.get("method") or {}
    name = str(method.get("name") or method.get("id") or "Dostawa")
    return OrderLine(sku=None, offer_id=None, name=name, quantity=1, unit_price_gross=cost, kind="shipping")


def channel_order(account: str, form: Mapping[str, Any]) -> ChannelOrder:
    """A CheckoutForm as the hub sees it; ``status`` is the form's own status (order_status.toml maps it)."""
    items = [i for i in form.get("lineItems") or [] if isinstance(i, Mapping)]
    lines = [order_line(i) for i in items]
    delivery = form.get("delivery") if isinstance(form.get("delivery"), Mapping) else {}
    charge = delivery_line(delivery)
    if charge is not None:
        lines.append(charge)
    total_price = (form.get("summary") or {}).get("totalToPay") or {}
    currency = str(total_price.get("currency") or next(
        ((i.get("price") or {}).get("currency") for i in items if (i.get("price") or {}).get("currency")), "PLN"))
    total = _amount(total_price)
    if total is None:
        total = sum((line.unit_price_gross * line.quantity for line in lines), Decimal("0"))
    buyer = form.get("buyer") or {}
    updated = parse_time(form.get("updatedAt"))
    bought = [t for t in (parse_time(i.get("boughtAt")) for i in items) if t is not None]
    created = min(bought) if bought else updated
    if created is None:
        raise ValueError(f"checkout form {form.get('id')} has neither boughtAt nor updatedAt")
    method = (delivery.get("method") or {})
    return ChannelOrder(
        channel_account=account, external_id=str(form["id"]), revision=str(form.get("revision") or ""),
        status=str(form.get("status") or ""), lines=lines,
        buyer_email=buyer.get("email") or None, buyer_login=buyer.get("login") or None,
        delivery_address=_delivery_address(delivery, buyer.get("email") or None),
        pickup_point=_pickup_point(delivery), delivery_method=method.get("name") or method.get("id") or None,
        payment=_payment(form, total, currency), invoice=_invoice(form), currency=currency,
        created_at=created, updated_at=updated or created, raw=dict(form),
    )


def fulfillment_status(form: Mapping[str, Any]) -> str | None:
    return ((form.get("fulfillment") or {}).get("status")) or None


# --- order lines for returns and refunds -----------------------------------------------------------


@dataclass(frozen=True)
class FormLine:
    """What a return or a refund needs of one checkout-form line item."""

    id: str
    offer_id: str | None
    sku: str | None
    quantity: int
    unit_price: Decimal
    currency: str


def form_lines(form: Mapping[str, Any]) -> list[FormLine]:
    out = []
    for item in form.get("lineItems") or []:
        line = order_line(item)
        if line.line_id is None:
            continue
        currency = str((item.get("price") or {}).get("currency") or "PLN")
        out.append(FormLine(line.line_id, line.offer_id, line.sku, line.quantity, line.unit_price_gross, currency))
    return out


def _match(line: ReturnLine, lines: Sequence[FormLine]) -> FormLine | None:
    """The order line a returned line is about: by line id, else by offer, else by the offer's signature."""
    for key, value in (("id", line.line_id), ("offer_id", line.offer_id), ("sku", line.sku)):
        if value:
            found = [fl for fl in lines if getattr(fl, key) == value]
            if found:
                return found[0]
    return None


# --- customer returns -> ChannelReturn ------------------------------------------------------------


def _reason(items: Iterable[Mapping[str, Any]]) -> str | None:
    reasons: list[str] = []
    for item in items:
        reason = item.get("reason") or {}
        text = ": ".join(str(p) for p in (reason.get("type"), reason.get("userComment")) if p)
        if text and text not in reasons:
            reasons.append(text)
    return "; ".join(reasons) or None


def channel_return(account: str, raw: Mapping[str, Any], lines: Sequence[FormLine] | None) -> ChannelReturn:
    """A CustomerReturn. Its items name only the offer, so ``lines`` (the order's line items, when known)
    supply the line id and the offer's signature; an item that matches no order line keeps its own
    price x quantity as ``amount_gross`` (CustomerReturnItem.price is taken as the unit price)."""
    items = [i for i in raw.get("items") or [] if isinstance(i, Mapping)]
    out = []
    for item in items:
        offer_id = str(item["offerId"]) if item.get("offerId") else None
        quantity = int(item.get("quantity") or 0)
        line = _match(ReturnLine(sku=None, offer_id=offer_id, quantity=quantity), lines or [])
        if line is not None:
            out.append(ReturnLine(sku=line.sku, offer_id=offer_id, quantity=quantity, line_id=line.id))
        else:
            price = _amount(item.get("price"))
            out.append(ReturnLine(sku=None, offer_id=offer_id, quantity=quantity,
                                  amount_gross=None if price is None else (price * quantity).quantize(_CENT)))
    created = parse_time(raw.get("createdAt"))
    stamps = [created, parse_time((raw.get("rejection") or {}).get("createdAt"))]
    stamps += [parse_time(p.get("createdAt")) for p in raw.get("parcels") or [] if isinstance(p, Mapping)]
    known = [s for s in stamps if s is not None]
    if created is None:
        raise ValueError(f"customer return {raw.get('id')} has no createdAt")
    status = str(raw.get("status") or "")
    return ChannelReturn(channel_account=account, external_id=str(raw["id"]),
                         order_external_id=str(raw.get("orderId") or ""), status=status, lines=out,
                         reason=_reason(items), created_at=created, updated_at=max(known),
                         refunded=status in REFUNDED_RETURN_STATUSES)


def rejection_body(reason: str) -> dict[str, Any]:
    """CustomerReturnRefundRejectionRequest: REFUND_REJECTED needs a reason of 1..250 characters."""
    text = " ".join(reason.split())[:REJECTION_REASON_MAX]
    if not text:
        raise ValueError("rejecting a return needs a reason (REFUND_REJECTED requires one)")
    return {"rejection": {"code": "REFUND_REJECTED", "reason": text}}


# --- refunds ------------------------------------------------------------------------------------


def refund_command_id(idempotency_key: str) -> str:
    """The refund's commandId: derived from the job's key, so every attempt sends the same one."""
    return str(uuid.uuid5(REFUND_NAMESPACE, f"refund:{idempotency_key}"))


def refund_marker(command_id: str) -> str:
    """The sellerComment the refund carries. RefundDetails has no commandId, so this is how the look-up
    before a resend recognises our own refund (and never someone else's, e.g. an earlier partial one)."""
    return f"ref. {command_id}"


def refund_line_items(request: RefundRequest, lines: Sequence[FormLine]) -> list[dict[str, Any]]:
    """RefundLineItem[] for a request. By QUANTITY when the request refunds the lines in full (the vendor
    then computes the money); by AMOUNT when the request's amount is less than the lines are worth, the
    amount spread over the lines in order (never QUANTITY and AMOUNT on one line: #5896).
    ValueError when a line cannot be matched or the amount is more than the lines are worth."""
    if not request.lines:
        raise ValueError("a refund needs at least one returned line")
    wanted: dict[str, list[Any]] = {}  # line id -> [FormLine, quantity, amount cap]
    by_amount = False
    for line in request.lines:
        found = _match(line, lines)
        if found is None:
            raise ValueError(f"returned line (offer {line.offer_id}, SKU {line.sku}, line {line.line_id}) is not "
                             f"in order {request.order_external_id}")
        if found.currency != request.currency:
            raise ValueError(f"order {request.order_external_id} is in {found.currency}, the refund in "
                             f"{request.currency}")
        if line.quantity <= 0:
            if not line.amount_gross or line.amount_gross <= 0:
                raise ValueError(f"returned line {found.id} has neither a quantity nor an amount")
            by_amount = True
            cap = line.amount_gross
        else:
            cap = found.unit_price * line.quantity
        entry = wanted.setdefault(found.id, [found, 0, Decimal("0")])
        entry[1] += max(line.quantity, 0)
        entry[2] += cap
    for found, quantity, _ in wanted.values():
        if quantity > found.quantity:
            raise ValueError(f"line {found.id}: {quantity} returned, {found.quantity} bought")
    full = sum((cap for _, _, cap in wanted.values()), Decimal("0")).quantize(_CENT)
    amount = request.amount.quantize(_CENT) if request.amount is not None else Decimal("0")
    if amount > full:
        raise ValueError(f"refund of {amount} {request.currency} is more than the returned lines are worth "
                         f"({full} {request.currency})")
    if not by_amount and (amount <= 0 or amount == full):
        return [{"id": found.id, "type": "QUANTITY", "quantity": quantity} for found, quantity, _ in wanted.values()]
    left = amount if amount > 0 else full
    items = []
    for found, _, cap in wanted.values():
        value = min(left, cap.quantize(_CENT))
        if value <= 0:
            continue
        left -= value
        items.append({"id": found.id, "type": "AMOUNT",
                      "value": {"amount": f"{value:.2f}", "currency": found.currency}})
    return items


def refund_body(request: RefundRequest, *, command_id: str, payment_id: str,
                line_items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """InitializeRefund (payment.id, order.id and commandId are required by the current spec, #11668)."""
    if request.reason not in REFUND_REASONS:
        raise ValueError(f"refund reason {request.reason!r} is not one of {sorted(REFUND_REASONS)}")
    return {"payment": {"id": payment_id}, "order": {"id": request.order_external_id}, "commandId": command_id,
            "reason": request.reason, "lineItems": [dict(i) for i in line_items],
            "sellerComment": refund_marker(command_id)}


def is_our_refund(refund: Mapping[str, Any], command_id: str) -> bool:
    return command_id in str(refund.get("sellerComment") or "")


# --- tracking numbers (POST /order/checkout-forms/{id}/shipments) ----------------------------------

MAX_WAYBILL = 64  # CheckoutFormAddWaybillRequest.waybill: "no longer than 64 characters"
MAX_CARRIER_NAME = 30  # CheckoutFormAddWaybillRequest.carrierName: "no longer than 30 characters"
OTHER_CARRIER = "OTHER"  # OrdersShippingCarrier.id for a carrier Allegro does not integrate
# the hub's operator names (hub.kernel.ports.carrier.Booking.operator) -> Allegro carrier ids, best first.
# The ids are those the spec names (Courier.id: ALLEGRO, DB_SCHENKER, DHL, DPD, DPD_SK, INPOST, ORLEN,
# POCZTA_POLSKA, SUUS, UPS); GLS and FEDEX are tried by id and name in case GET /order/carriers has them.
# Allegro One parcels (and InPost/Orlen ones shipped through Allegro) are tracked under ALLEGRO (#11643).
OPERATOR_CARRIERS: dict[str, tuple[str, ...]] = {
    "inpost": ("INPOST",), "dpd": ("DPD",), "poczta-polska": ("POCZTA_POLSKA",), "dhl": ("DHL",), "ups": ("UPS",),
    "gls": ("GLS",), "fedex": ("FEDEX",), "orlen": ("ORLEN",), "allegro-one": ("ALLEGRO",),
}
# what the buyer reads when the carrier goes as OTHER (carrierName), and what a name match looks for
OPERATOR_NAMES: dict[str, str] = {
    "inpost": "InPost", "dpd": "DPD", "poczta-polska": "Poczta Polska", "dhl": "DHL", "ups": "UPS", "gls": "GLS",
    "fedex": "FedEx", "orlen": "ORLEN Paczka", "allegro-one": "Allegro One",
}


def waybill_key(waybill: Any) -> str:
    """How two waybills compare: without blanks, upper case (a number keyed by hand in Moje Allegro may
    carry either); what is sent stays as the carrier gave it."""
    return "".join(str(waybill or "").split()).upper()


def notice_waybills(numbers: Iterable[str]) -> list[str]:
    """The notice's tracking numbers, trimmed, each once, in order. ValueError for an empty or too long one
    (the vendor's 400 would say the same, after a round trip)."""
    out: list[str] = []
    seen: set[str] = set()
    for raw in numbers:
        waybill = str(raw).strip()
        if not waybill:
            raise ValueError("an empty tracking number")
        if len(waybill) > MAX_WAYBILL:
            raise ValueError(f"tracking number {waybill!r} is longer than Allegro's {MAX_WAYBILL} characters")
        if waybill_key(waybill) not in seen:
            seen.add(waybill_key(waybill))
            out.append(waybill)
    if not out:
        raise ValueError("no tracking number to add")
    return out


def shown_waybills(answer: Mapping[str, Any]) -> set[str]:
    """The waybills a CheckoutFormOrderWaybillResponse shows (ours, the seller's, Allegro's own shipping's)."""
    return {waybill_key(s.get("waybill")) for s in answer.get("shipments") or []
            if isinstance(s, Mapping) and s.get("waybill")}


def line_item_ids(form: Mapping[str, Any]) -> list[str]:
    """Every line item id of a CheckoutForm: the parcel carries the whole order (the hub books one
    shipment per order)."""
    return [str(i["id"]) for i in form.get("lineItems") or [] if isinstance(i, Mapping) and i.get("id")]


def _name_key(name: Any) -> str:
    return "".join(ch for ch in str(name or "").lower() if ch.isalnum())


def carrier_for(operator: str, carriers: Iterable[Mapping[str, Any]]) -> tuple[str, str | None]:
    """(carrierId, carrierName) for a hub operator, given GET /order/carriers: the operator's Allegro id
    when the list has it, else a carrier of the same name, else OTHER with the operator's name (the
    buyer then sees the name, without Allegro's automatic parcel status)."""
    known = [c for c in carriers if isinstance(c, Mapping) and c.get("id")]
    ids = {str(c["id"]) for c in known}
    for carrier_id in OPERATOR_CARRIERS.get(operator, ()):
        if carrier_id in ids:
            return carrier_id, None
    name = OPERATOR_NAMES.get(operator) or operator.strip() or "Przewoźnik"
    wanted = {_name_key(name), _name_key(operator)}
    for carrier in known:
        if str(carrier["id"]) != OTHER_CARRIER and _name_key(carrier.get("name")) in wanted:
            return str(carrier["id"]), None
    return OTHER_CARRIER, name[:MAX_CARRIER_NAME]


def shipment_body(carrier_id: str, carrier_name: str | None, waybill: str,
                  line_items: Sequence[str]) -> dict[str, Any]:
    """CheckoutFormAddWaybillRequest; carrierName only with OTHER (the vendor ignores it otherwise)."""
    body: dict[str, Any] = {"carrierId": carrier_id, "waybill": waybill}
    if carrier_id == OTHER_CARRIER and carrier_name:
        body["carrierName"] = carrier_name[:MAX_CARRIER_NAME]
    body["lineItems"] = [{"id": line_id} for line_id in line_items]
    return body
