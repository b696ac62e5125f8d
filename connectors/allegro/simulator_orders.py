"""The simulator's orders side: checkout forms, the order event journal, fulfillment status, customer
returns (beta resources) and payment refunds, with the spec's shapes (swagger.yaml).

Mixed into AllegroSimulator. Built for volume: 10,000 orders are placed in one call
(``place_orders_bulk``), the journal is read by bisecting event ids (O(page)), and checkout forms are
listed by ``updatedAt`` from an append-only index. Every change of a form gives it a new revision and
journals an event. The journal's documented quirks are switchable: duplicate READY_FOR_PROCESSING
events and out-of-order entries (``duplicate_event_rate``, ``out_of_order_rate``, or per order).
Refunds honour ``commandId``: the same command sent again answers the refund it made, once.

Tracking numbers (``/order/checkout-forms/{id}/shipments``, ``/order/carriers``) are kept per form as the spec's
CheckoutFormAddWaybillCreated. Like the vendor, the simulator does NOT deduplicate: the same waybill posted twice
is two shipments (shared/notes/allegro.md: posting a Ship-with-Allegro parcel's waybill again "makes a
duplicate"), so a connector that posts blindly shows in ``shipments()``. ``attach_waybill`` is Allegro's own
shipping attaching its parcel by itself (allegro-api #11643).
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import itertools
import json
import random
import re
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

SELLER_ID = "437848322"
MARKETPLACE = "allegro-pl"
EVENT_TYPES = ("BOUGHT", "FILLED_IN", "READY_FOR_PROCESSING", "BUYER_CANCELLED", "FULFILLMENT_STATUS_CHANGED",
               "BUYER_MODIFIED", "AUTO_CANCELLED")
FULFILLMENT = ("NEW", "PROCESSING", "READY_FOR_SHIPMENT", "READY_FOR_PICKUP", "SENT", "PICKED_UP", "CANCELLED",
               "SUSPENDED")  # RETURNED exists but the seller cannot set it
REFUND_REASONS = ("REFUND", "COMPLAINT", "PRODUCT_NOT_AVAILABLE", "PAID_VALUE_TOO_LOW", "OVERPAID",
                  "CANCELLED_BY_BUYER", "NOT_COLLECTED")
REJECTION_CODES = ("REFUND_REJECTED", "NEW_ITEM_SENT", "ITEM_FIXED", "MISSING_PART_SENT", "ITEM_MISMATCH",
                   "BUSINESS_PURCHASE", "NO_RETURN_RIGHT")
FIRST_EVENT_ID = 1_532_603_898_317_497
# the fulfillment statuses a tracking number moves to SENT (with the seller's setting on): those before it
BEFORE_SENT = frozenset({"NEW", "PROCESSING", "READY_FOR_SHIPMENT", "READY_FOR_PICKUP"})
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_FORM = re.compile(r"^/order/checkout-forms/([^/]+)(/fulfillment)?$")
_RETURN = re.compile(r"^/order/customer-returns/([^/]+)(/rejection)?$")
_SHIPMENTS = re.compile(r"^/order/checkout-forms/([^/]+)/shipments$")
# GET /order/carriers (OrdersShippingCarriersResponse): the ids are the spec's own (Courier.id: "ALLEGRO,
# DB_SCHENKER, DHL, DPD, DPD_SK, INPOST, ORLEN, POCZTA_POLSKA, SUUS, UPS", and the order-carriers example:
# POCZTA_POLSKA "Poczta Polska", DHL "DHL", YUN_EXPRESS "Yun Express", OTHER without a name); the names of
# the ones the example does not show are the simulator's. GLS and FedEx are in neither list: not here.
CARRIERS: tuple[tuple[str, str | None], ...] = (
    ("ALLEGRO", "Allegro"), ("DB_SCHENKER", "DB Schenker"), ("DHL", "DHL"), ("DPD", "DPD"), ("DPD_SK", "DPD SK"),
    ("INPOST", "InPost"), ("ORLEN", "ORLEN Paczka"), ("POCZTA_POLSKA", "Poczta Polska"), ("SUUS", "Suus"),
    ("UPS", "UPS"), ("YUN_EXPRESS", "Yun Express"), ("OTHER", None))
MAX_WAYBILL = 64  # CheckoutFormAddWaybillRequest.waybill maxLength
MAX_CARRIER_NAME = 30  # CheckoutFormAddWaybillRequest.carrierName maxLength
Answer = tuple[int, Any, list[tuple[str, str]]]


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _money(amount: Decimal, currency: str) -> dict[str, str]:
    return {"amount": f"{amount:.2f}", "currency": currency}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message, "details": None, "path": None, "userMessage": message}]}


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass
class SimLine:
    id: str
    offer_id: str
    name: str
    external_id: str | None
    quantity: int
    price: Decimal
    currency: str
    bought_at: datetime
    tax_rate: str | None = "23.00"
    refunded_quantity: int = 0
    refunded_amount: Decimal = Decimal("0")

    def dto(self) -> dict[str, Any]:
        """A CheckoutFormLineItem."""
        offer: dict[str, Any] = {"id": self.offer_id, "name": self.name}
        if self.external_id is not None:
            offer["external"] = {"id": self.external_id}
        out: dict[str, Any] = {"id": self.id, "offer": offer, "quantity": self.quantity,
                               "originalPrice": _money(self.price, self.currency),
                               "price": _money(self.price, self.currency), "boughtAt": _iso(self.bought_at)}
        if self.tax_rate is not None:
            out["tax"] = {"rate": self.tax_rate, "subject": "GOODS"}
        return out

    def event_dto(self) -> dict[str, Any]:
        """An OrderLineItem (the journal's shorter line)."""
        offer: dict[str, Any] = {"id": self.offer_id, "name": self.name}
        if self.external_id is not None:
            offer["external"] = {"id": self.external_id}
        return {"id": self.id, "offer": offer, "quantity": self.quantity,
                "originalPrice": _money(self.price, self.currency), "price": _money(self.price, self.currency),
                "boughtAt": _iso(self.bought_at)}


@dataclass
class SimCheckoutForm:
    id: str
    buyer: dict[str, Any]
    lines: list[SimLine]
    payment: dict[str, Any]
    delivery: dict[str, Any]
    invoice: dict[str, Any] | None
    currency: str
    delivery_cost: Decimal
    created_seq: int
    status: str = "BOUGHT"
    fulfillment: str = "NEW"
    revision: str = ""
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    update_seq: int = 0
    changes: int = 0
    status_ops: int = 0  # fulfillment changes the seller made through the API
    shipments: list[dict[str, Any]] = field(default_factory=list)  # CheckoutFormAddWaybillCreated, oldest first

    @property
    def line_items_sent(self) -> str:
        """CheckoutFormFulfillmentShipmentSummaryLineItemsSent: whether none, some or all of the line items
        have a tracking number (the spec's fulfillment.shipmentSummary.lineItemsSent filter)."""
        sent = {i.get("id") for s in self.shipments for i in s.get("lineItems") or []}
        covered = sum(1 for line in self.lines if line.id in sent)
        return "NONE" if not covered else "ALL" if covered == len(self.lines) else "SOME"

    @property
    def total(self) -> Decimal:
        return sum((line.price * line.quantity for line in self.lines), Decimal("0")) + self.delivery_cost

    @property
    def paid(self) -> bool:
        return "paidAmount" in self.payment

    def dto(self) -> dict[str, Any]:
        """A CheckoutForm."""
        out: dict[str, Any] = {
            "id": self.id, "buyer": self.buyer, "payment": self.payment, "status": self.status,
            "fulfillment": {"status": self.fulfillment, "shipmentSummary": {"lineItemsSent": self.line_items_sent},
                            "provider": {"id": "SELLER"}},
            "delivery": self.delivery, "lineItems": [line.dto() for line in self.lines], "surcharges": [],
            "marketplace": {"id": MARKETPLACE}, "summary": {"totalToPay": _money(self.total, self.currency)},
            "updatedAt": _iso(self.updated_at), "revision": self.revision,
        }
        if self.invoice is not None:
            out["invoice"] = self.invoice
        return out


class SimEvent(NamedTuple):
    id: int
    type: str
    occurred_at: datetime
    form_id: str
    revision: str


@dataclass
class SimReturn:
    id: str
    order_id: str
    items: list[dict[str, Any]]
    status: str
    created_at: datetime
    reference: str
    buyer: dict[str, Any]
    parcels: list[dict[str, Any]] = field(default_factory=list)
    rejection: dict[str, Any] | None = None

    def dto(self) -> dict[str, Any]:
        """A CustomerReturn."""
        out: dict[str, Any] = {"id": self.id, "isFulfillment": False, "createdAt": _iso(self.created_at),
                               "referenceNumber": self.reference, "orderId": self.order_id, "buyer": self.buyer,
                               "items": self.items, "parcels": self.parcels, "marketplaceId": MARKETPLACE,
                               "status": self.status}
        if self.rejection is not None:
            out["rejection"] = self.rejection
        return out


@dataclass
class SimRefund:
    id: str
    command_id: str | None
    body: str  # the canonical request, to tell a resend from a different command under the same id
    payment_id: str
    order_id: str
    reason: str
    status: str
    created_at: datetime
    total: Decimal
    currency: str
    line_items: list[dict[str, Any]]
    seller_comment: str | None

    def dto(self) -> dict[str, Any]:
        """A RefundDetails."""
        out: dict[str, Any] = {"id": self.id, "payment": {"id": self.payment_id}, "order": {"id": self.order_id},
                               "reason": self.reason, "status": self.status, "createdAt": _iso(self.created_at),
                               "totalValue": _money(self.total, self.currency), "lineItems": self.line_items}
        if self.seller_comment is not None:
            out["sellerComment"] = self.seller_comment
        return out


class OrdersSimulator:
    """Orders, returns and refunds state of AllegroSimulator (which provides the lock and the offers)."""

    _offers: dict[str, Any]
    _lock: Any

    def _init_orders(self, seed: int, wall: Callable[[], datetime]) -> None:
        self._wall = wall
        self._order_ids = random.Random(seed + 3)  # ids of forms, lines, payments, returns, refunds
        self._quirks = random.Random(seed + 4)  # duplicate and out-of-order journal entries
        self.duplicate_event_rate = 0.0
        self.out_of_order_rate = 0.0
        self.refund_status = "SUCCESS"
        # the vendor's limit of fulfillment operations per order (#3652): a PUT past it answers 422
        self.fulfillment_ops_limit: int | None = None
        self._forms: dict[str, SimCheckoutForm] = {}
        self._created: list[str] = []  # form ids in the order they were bought
        self._updates: list[tuple[datetime, int, str]] = []  # (updatedAt, update seq, form id); stale rows skipped
        self._seq = 0
        self._events: list[SimEvent] = []
        self._event_ids: list[int] = []
        self._last_stamp = datetime.min.replace(tzinfo=UTC)
        self._returns: dict[str, SimReturn] = {}
        self._return_order: list[str] = []
        self._refunds: dict[str, SimRefund] = {}
        self._refund_order: list[str] = []
        self._refund_commands: dict[str, str] = {}
        self.refund_posts: Counter[str] = Counter()  # POSTs per commandId (a resend counts, a refund does not)
        self.fulfillment_puts = 0
        self.carriers: list[dict[str, Any]] = [{"id": i} if n is None else {"id": i, "name": n} for i, n in CARRIERS]
        # the spec: GET /order/carriers "can be stored in accordance with returned caching headers" (which
        # ones it does not say): a Cache-Control value to send, or None for none
        self.carriers_cache_control: str | None = None
        self.shipment_posts: Counter[str] = Counter()  # POSTs per checkout form (each one applied or refused)
        # 409 "Maximum waybill usage exceeded (e.g. used in too many orders)": how many orders one waybill may
        # be on (None: no limit; the vendor does not publish its number)
        self.waybill_orders_limit: int | None = None
        # the seller's setting (notes: "adding a tracking number switches the order to SENT automatically")
        self.sent_on_tracking = False

    # --- seeding ---------------------------------------------------------------------------------

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._order_ids.getrandbits(128), version=4))

    def _stamp(self) -> datetime:
        """Now, to the millisecond (what the API shows), never earlier than the previous stamp."""
        now = self._wall().astimezone(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if now < self._last_stamp:
            now = self._last_stamp
        self._last_stamp = now
        return now

    def _change(self, form: SimCheckoutForm, event: str | None, at: datetime | None = None) -> SimEvent | None:
        """A new revision and updatedAt for the form, and (unless None) its journal entry."""
        at = at or self._stamp()
        self._seq += 1
        form.changes += 1
        form.revision = hashlib.blake2b(f"{form.id}:{form.changes}".encode(), digest_size=4).hexdigest()
        form.updated_at = at
        form.update_seq = self._seq
        self._updates.append((at, self._seq, form.id))
        if len(self._updates) > 2 * len(self._forms) + 1024:
            self._updates = [u for u in self._updates if self._forms[u[2]].update_seq == u[1]]
        if event is None:
            return None
        return self._journal(event, form, at)

    def _journal(self, event_type: str, form: SimCheckoutForm, at: datetime) -> SimEvent:
        event_id = self._event_ids[-1] + 1 if self._event_ids else FIRST_EVENT_ID
        event = SimEvent(event_id, event_type, at, form.id, form.revision)
        self._events.append(event)
        self._event_ids.append(event_id)
        return event

    def _swap_last_events(self) -> None:
        """The last two journal entries trade places (ids stay ascending): an out-of-order journal (#1133)."""
        a, b = self._events[-2], self._events[-1]
        self._events[-2], self._events[-1] = b._replace(id=a.id), a._replace(id=b.id)

    def place_order(
        self,
        lines: Sequence[tuple[str, int] | tuple[str, int, Decimal | str]],
        *,
        buyer_login: str = "kupujacy",
        buyer_email: str | None = None,
        cod: bool = False,
        paid: bool = True,
        invoice_nip: str | None = None,
        invoice_company: str = "Firma Testowa Sp. z o.o.",
        pickup_point: str | None = None,
        delivery_cost: Decimal | str = "0.00",
        tax_rate: str | None = "23.00",
        duplicate: bool | None = None,
        out_of_order: bool | None = None,
    ) -> str:
        """A buyer buys (BOUGHT) and completes the checkout: READY_FOR_PROCESSING when paid online or cash
        on delivery, FILLED_IN when not paid yet. ``lines``: (offer id, quantity[, unit price]) of offers
        the simulator has; the offer's signature becomes the line's external id. Returns the form id."""
        with self._lock:
            return self._place(lines, buyer_login=buyer_login, buyer_email=buyer_email, cod=cod, paid=paid,
                               invoice_nip=invoice_nip, invoice_company=invoice_company, pickup_point=pickup_point,
                               delivery_cost=Decimal(str(delivery_cost)), tax_rate=tax_rate, duplicate=duplicate,
                               out_of_order=out_of_order)

    def place_orders_bulk(self, count: int, *, offer_ids: Sequence[str] | None = None, quantity: int = 1,
                          cod_every: int = 0, pickup_every: int = 0, invoice_every: int = 0,
                          duplicate: bool | None = None, out_of_order: bool | None = None) -> list[str]:
        """``count`` orders at once (one line each, offers taken in turn; every n-th COD / pickup point /
        invoice), for volume tests: one lock, no per-order overhead beyond the order itself."""
        with self._lock:
            offers = list(offer_ids) if offer_ids is not None else list(self._offers)
            if not offers:
                raise ValueError("place_orders_bulk needs offers: add_offers() first")
            return [self._place([(offers[i % len(offers)], quantity)], buyer_login=f"kupujacy{i}", buyer_email=None,
                                cod=bool(cod_every) and i % cod_every == 0, paid=True,
                                invoice_nip="5260250274" if invoice_every and i % invoice_every == 0 else None,
                                invoice_company="Firma Testowa Sp. z o.o.",
                                pickup_point=f"POZ{i % 100:02d}A" if pickup_every and i % pickup_every == 0 else None,
                                delivery_cost=Decimal("0.00"), tax_rate="23.00", duplicate=duplicate,
                                out_of_order=out_of_order)
                    for i in range(count)]

    def _place(self, lines: Sequence[tuple[Any, ...]], *, buyer_login: str, buyer_email: str | None, cod: bool,
               paid: bool, invoice_nip: str | None, invoice_company: str, pickup_point: str | None,
               delivery_cost: Decimal, tax_rate: str | None, duplicate: bool | None,
               out_of_order: bool | None) -> str:
        at = self._stamp()
        sim_lines = []
        currency = "PLN"
        for spec in lines:
            offer = self._offers[spec[0]]
            price = Decimal(str(spec[2])) if len(spec) > 2 else offer.price
            currency = offer.currency
            # "OFFER_STOCK_CHANGED - stock in an offer was changed either via purchase or by seller", and
            # stock 0 ends an offer: a purchase takes its units off an offer on sale (never below 0 here).
            # Tests also place orders on offers that are not on sale, to make oversold orders; a real
            # buyer cannot buy those, so their stock stays as the seller set it
            if offer.status == "ACTIVE":
                offer.quantity = max(0, offer.quantity - int(spec[1]))
                if offer.quantity == 0:
                    offer.status = "ENDED"
            sim_lines.append(SimLine(self._uuid(), offer.id, offer.name or f"Offer {offer.id}", offer.external_id,
                                     int(spec[1]), price, offer.currency, at, tax_rate))
        buyer = {"id": str(10_000_000 + len(self._forms)), "email": buyer_email or f"{buyer_login}@allegromail.pl",
                 "login": buyer_login, "firstName": "Jan", "lastName": "Kowalski", "guest": False,
                 "phoneNumber": "500600700", "address": {"street": "Solna 1", "city": "Poznań", "postCode": "60-166",
                                                         "countryCode": "PL"}}
        delivery: dict[str, Any] = {
            "address": {"firstName": "Jan", "lastName": "Kowalski", "street": "Grunwaldzka 182", "city": "Poznań",
                        "zipCode": "60-166", "countryCode": "PL", "phoneNumber": "500600700"},
            "method": {"id": "1fa56f79-4b6a-4821-a6f2-ca9c16d5c925",
                       "name": "Allegro Paczkomaty InPost" if pickup_point else "Allegro Kurier DPD"},
            "cost": _money(delivery_cost, currency), "smart": False, "calculatedNumberOfPackages": 1,
        }
        if pickup_point:
            delivery["pickupPoint"] = {"id": pickup_point, "name": f"Paczkomat {pickup_point}",
                                       "description": "Stacja paliw BP",
                                       "address": {"street": "Grunwaldzka 108", "zipCode": "60-166", "city": "Poznań",
                                                   "countryCode": "PL"}}
        invoice = None
        if invoice_nip is not None:
            invoice = {"required": True, "address": {
                "street": "Marcinkowskiego 1", "city": "Poznań", "zipCode": "61-745", "countryCode": "PL",
                "company": {"name": invoice_company, "ids": [{"type": "PL_NIP", "value": invoice_nip}],
                            "vatPayerStatus": "ACTIVE", "taxId": invoice_nip}}}
        payment: dict[str, Any] = {"id": self._uuid(), "type": "CASH_ON_DELIVERY" if cod else "ONLINE",
                                   "provider": "OFFLINE" if cod else "P24"}
        form = SimCheckoutForm(self._uuid(), buyer, sim_lines, payment, delivery, invoice, currency, delivery_cost,
                               len(self._created))
        self._forms[form.id] = form
        self._created.append(form.id)
        self._change(form, "BOUGHT", at)
        if cod or paid:
            if not cod:
                payment["finishedAt"] = _iso(at)
                payment["paidAmount"] = _money(form.total, currency)
            form.status = "READY_FOR_PROCESSING"
        else:
            form.status = "FILLED_IN"
        self._change(form, form.status, at)
        if out_of_order if out_of_order is not None else self._quirks.random() < self.out_of_order_rate:
            self._swap_last_events()
        if form.status == "READY_FOR_PROCESSING" and (
                duplicate if duplicate is not None else self._quirks.random() < self.duplicate_event_rate):
            self._journal("READY_FOR_PROCESSING", form, at)  # documented: the same event twice (#2589)
        return form.id

    def pay_order(self, order_id: str) -> None:
        """The buyer pays a FILLED_IN order: READY_FOR_PROCESSING."""
        with self._lock:
            form = self._forms[order_id]
            at = self._stamp()
            form.payment.update(finishedAt=_iso(at), paidAmount=_money(form.total, form.currency))
            form.status = "READY_FOR_PROCESSING"
            self._change(form, "READY_FOR_PROCESSING", at)

    def cancel_order(self, order_id: str, *, auto: bool = False) -> None:
        """The buyer (or Allegro, ``auto``) cancels: CANCELLED, journalled as BUYER_/AUTO_CANCELLED."""
        with self._lock:
            form = self._forms[order_id]
            form.status = "CANCELLED"
            self._change(form, "AUTO_CANCELLED" if auto else "BUYER_CANCELLED")

    def modify_order(self, order_id: str, *, street: str = "Nowa 5") -> None:
        """The buyer changes the delivery address (BUYER_MODIFIED): a new revision."""
        with self._lock:
            form = self._forms[order_id]
            form.delivery["address"] = {**form.delivery["address"], "street": street}
            self._change(form, "BUYER_MODIFIED")

    def set_fulfillment_status(self, order_id: str, status: str) -> None:
        """The seller changes the status in Allegro's own panel (a new revision the hub has not seen)."""
        with self._lock:
            form = self._forms[order_id]
            form.fulfillment = status
            self._change(form, "FULFILLMENT_STATUS_CHANGED")

    def checkout_form(self, order_id: str) -> dict[str, Any]:
        """The form as GET /order/checkout-forms/{id} shows it now."""
        with self._lock:
            return json.loads(json.dumps(self._forms[order_id].dto()))

    def order_ids(self) -> list[str]:
        with self._lock:
            return list(self._created)

    def journal(self) -> list[SimEvent]:
        with self._lock:
            return list(self._events)

    def add_return(self, order_id: str, lines: Sequence[tuple[str, int]] | None = None, *, status: str = "CREATED",
                   reason: str = "DAMAGED", comment: str | None = None) -> str:
        """The buyer declares a return of (offer id, quantity) of the order (default: everything)."""
        with self._lock:
            form = self._forms[order_id]
            wanted = lines if lines is not None else [(line.offer_id, line.quantity) for line in form.lines]
            by_offer = {line.offer_id: line for line in form.lines}
            items = []
            for offer_id, quantity in wanted:
                line = by_offer[offer_id]
                item: dict[str, Any] = {"offerId": offer_id, "quantity": quantity, "name": line.name,
                                        "price": _money(line.price, line.currency),
                                        "url": f"https://allegro.pl/oferta/{offer_id}",
                                        "reason": {"type": reason}}
                if comment:
                    item["reason"]["userComment"] = comment
                items.append(item)
            return_id = self._uuid()
            self._returns[return_id] = SimReturn(
                return_id, order_id, items, status, self._stamp(), f"{len(self._returns) + 1:04d}/Z04A",
                {"email": form.buyer["email"], "login": form.buyer["login"]})
            self._return_order.append(return_id)
            return return_id

    def set_return_status(self, return_id: str, status: str) -> None:
        """The return moves on (e.g. DISPATCHED with a parcel, DELIVERED)."""
        with self._lock:
            sim_return = self._returns[return_id]
            sim_return.status = status
            if status == "DISPATCHED" and not sim_return.parcels:
                sim_return.parcels.append({"createdAt": _iso(self._stamp()), "waybill": "AD00R28X72",
                                           "transportingWaybill": None, "carrierId": "ALLEGRO",
                                           "transportingCarrierId": None, "sender": {"phoneNumber": "500600700"}})

    def customer_return(self, return_id: str) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._returns[return_id].dto()))

    def shipments(self, order_id: str) -> list[dict[str, Any]]:
        """The order's tracking numbers as GET /order/checkout-forms/{id}/shipments shows them."""
        with self._lock:
            return json.loads(json.dumps(self._forms[order_id].shipments))

    def attach_waybill(self, order_id: str, waybill: str, carrier_id: str = "ALLEGRO") -> None:
        """Allegro's own shipping attaches its parcel's waybill to the order by itself (#11643; InPost and
        Orlen parcels shipped through Allegro are under carrier ALLEGRO)."""
        with self._lock:
            form = self._forms[order_id]
            self._add_shipment(form, carrier_id, waybill, None, [line.id for line in form.lines])

    def refunds(self, order_id: str | None = None) -> list[SimRefund]:
        with self._lock:
            every = (self._refunds[i] for i in self._refund_order)
            return [r for r in every if order_id is None or r.order_id == order_id]

    # --- REST --------------------------------------------------------------------------------------

    def _orders_api(self, method: str, path: str, params: list[tuple[str, str]], body: bytes) -> Answer | None:
        """The answer for an orders, returns or refunds resource; None when the path is none of them."""
        if path == "/order/events":
            return self._get_events(params) if method == "GET" else _not_allowed()
        if path == "/order/event-stats":
            return self._event_stats() if method == "GET" else _not_allowed()
        if path == "/order/checkout-forms":
            return self._list_forms(params) if method == "GET" else _not_allowed()
        if path == "/order/carriers":
            return self._get_carriers() if method == "GET" else _not_allowed()
        if (match := _SHIPMENTS.match(path)) is not None:
            if method == "GET":
                return self._get_shipments(match.group(1))
            return self._post_shipment(match.group(1), body) if method == "POST" else _not_allowed()
        if (match := _FORM.match(path)) is not None:
            if match.group(2):
                return self._put_fulfillment(match.group(1), params, body) if method == "PUT" else _not_allowed()
            return self._get_form(match.group(1)) if method == "GET" else _not_allowed()
        if path == "/order/customer-returns":
            return self._list_returns(params) if method == "GET" else _not_allowed()
        if (match := _RETURN.match(path)) is not None:
            if match.group(2):
                return self._reject(match.group(1), body) if method == "POST" else _not_allowed()
            found = self._returns.get(match.group(1))
            if method != "GET":
                return _not_allowed()
            if found is None:
                return 404, _error("NotFoundException", f"Customer return {match.group(1)} not found"), []
            return 200, found.dto(), []
        if path == "/payments/refunds":
            if method == "GET":
                return self._list_refunds(params)
            return self._post_refund(body) if method == "POST" else _not_allowed()
        return None

    def _get_events(self, params: list[tuple[str, str]]) -> Answer:
        values = _values(params)
        types = values.get("type", [])
        if any(t not in EVENT_TYPES for t in types):
            return 422, _error("VALIDATION_ERROR", f"type: allowed values are {', '.join(EVENT_TYPES)}"), []
        try:
            limit = int(values.get("limit", ["100"])[-1])
            after = int(values["from"][-1]) if values.get("from") else None
        except ValueError:
            return 422, _error("VALIDATION_ERROR", "limit and from must be numbers"), []
        if not 1 <= limit <= 1000:
            return 422, _error("VALIDATION_ERROR", "limit must be 1..1000"), []
        start = 0 if after is None else bisect.bisect_right(self._event_ids, after)
        wanted = set(types) if types and set(types) != set(EVENT_TYPES) else None
        out = []
        for event in itertools.islice(self._events, start, None):
            if wanted is not None and event.type not in wanted:
                continue
            out.append(self._event_dto(event))
            if len(out) >= limit:
                break
        return 200, {"events": out}, []

    def _event_dto(self, event: SimEvent) -> dict[str, Any]:
        """An OrderEvent; the buyer and lines as the form has them (they never change)."""
        form = self._forms[event.form_id]
        buyer = {k: form.buyer[k] for k in ("id", "email", "login", "guest")}
        return {"id": str(event.id), "type": event.type, "occurredAt": _iso(event.occurred_at),
                "order": {"seller": {"id": SELLER_ID}, "buyer": buyer,
                          "lineItems": [line.event_dto() for line in form.lines],
                          "checkoutForm": {"id": form.id, "revision": event.revision},
                          "marketplace": {"id": MARKETPLACE}}}

    def _event_stats(self) -> Answer:
        if not self._events:
            return 200, {}, []
        last = self._events[-1]
        return 200, {"latestEvent": {"id": str(last.id), "occurredAt": _iso(last.occurred_at)}}, []

    def _get_form(self, form_id: str) -> Answer:
        if not _UUID.match(form_id):
            return 422, _error("VALIDATION_ERROR", f"{form_id} is not a UUID"), []
        form = self._forms.get(form_id)
        if form is None:
            return 404, _error("NotFoundException", f"Checkout form {form_id} not found"), []
        return 200, form.dto(), []

    def _list_forms(self, params: list[tuple[str, str]]) -> Answer:
        values = {k: v[-1] for k, v in _values(params).items()}
        try:
            limit, offset = int(values.get("limit", "100")), int(values.get("offset", "0"))
        except ValueError:
            return 422, _error("VALIDATION_ERROR", "limit and offset must be integers"), []
        if not 1 <= limit <= 100 or offset < 0:
            return 422, _error("VALIDATION_ERROR", "limit must be 1..100 and offset >= 0"), []
        bounds = {}
        for key in ("updatedAt.gte", "updatedAt.lte", "lineItems.boughtAt.gte", "lineItems.boughtAt.lte"):
            if key in values:
                parsed = _parse_time(values[key])
                if parsed is None:
                    return 400, _error("VALIDATION_ERROR", f"{key}: not an ISO 8601 date-time"), []
                bounds[key] = parsed
        sort = values.get("sort", "-lineItems.boughtAt")
        if sort not in ("lineItems.boughtAt", "-lineItems.boughtAt", "updatedAt", "-updatedAt"):
            return 400, _error("VALIDATION_ERROR", f"sort: {sort} is not allowed"), []
        status, fulfillment = values.get("status"), values.get("fulfillment.status")

        def keep(form: SimCheckoutForm) -> bool:
            bought = form.lines[0].bought_at if form.lines else form.updated_at
            return ((status is None or form.status == status)
                    and (fulfillment is None or form.fulfillment == fulfillment)
                    and ("updatedAt.lte" not in bounds or form.updated_at <= bounds["updatedAt.lte"])
                    and ("updatedAt.gte" not in bounds or form.updated_at >= bounds["updatedAt.gte"])
                    and ("lineItems.boughtAt.gte" not in bounds or bought >= bounds["lineItems.boughtAt.gte"])
                    and ("lineItems.boughtAt.lte" not in bounds or bought <= bounds["lineItems.boughtAt.lte"]))

        if sort.endswith("updatedAt"):
            start = 0
            if "updatedAt.gte" in bounds:
                start = bisect.bisect_left(self._updates, (bounds["updatedAt.gte"], -1, ""))
            rows = self._updates[start:]
            ordered = (self._forms[i] for _, seq, i in (reversed(rows) if sort.startswith("-") else rows)
                       if self._forms[i].update_seq == seq)
        else:
            ids = self._created if sort == "lineItems.boughtAt" else reversed(self._created)
            ordered = (self._forms[i] for i in ids)
        total = 0
        page = []
        for form in ordered:
            if not keep(form):
                continue
            if offset <= total < offset + limit:
                page.append(form.dto())
            total += 1
        return 200, {"checkoutForms": page, "count": len(page), "totalCount": total}, []

    def _put_fulfillment(self, form_id: str, params: list[tuple[str, str]], raw: bytes) -> Answer:
        self.fulfillment_puts += 1
        form = self._forms.get(form_id)
        if form is None:
            return 404, _error("NotFoundException", f"Checkout form {form_id} not found"), []
        revision = dict(params).get("checkoutForm.revision")
        if revision is not None and revision != form.revision:
            return 409, _error("CONFLICT", f"Provided revision {revision} is outdated (current {form.revision})"), []
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, _error("VALIDATION_ERROR", "Malformed JSON"), []
        status = body.get("status") if isinstance(body, dict) else None
        if status not in FULFILLMENT:
            return 422, _error("VALIDATION_ERROR", f"status {status!r} cannot be set (allowed: "
                                                   f"{', '.join(FULFILLMENT)})"), []
        if self.fulfillment_ops_limit is not None and form.status_ops >= self.fulfillment_ops_limit:
            return 422, _error("OPERATIONS_LIMIT_EXCEEDED", "The limit of operations on this order has been "
                                                            "reached."), []
        form.status_ops += 1
        form.fulfillment = status
        self._change(form, "FULFILLMENT_STATUS_CHANGED")
        return 204, None, []

    def _get_carriers(self) -> Answer:
        extra = [("Cache-Control", self.carriers_cache_control)] if self.carriers_cache_control else []
        return 200, {"carriers": [dict(c) for c in self.carriers]}, extra

    def _get_shipments(self, form_id: str) -> Answer:
        form = self._forms.get(form_id)
        if form is None:
            return 404, _error("NotFoundException", f"Checkout form {form_id} not found"), []
        return 200, {"shipments": [dict(s) for s in form.shipments]}, []

    def _post_shipment(self, form_id: str, raw: bytes) -> Answer:
        """The checks the spec lists: 400 for a missing field or an invalid value (unknown carrier id, carrier
        name too long, a waybill empty or over 64 characters), 404 for an order not found, 409 for a waybill
        used too many times, 422 for a line item not of the order. No deduplication (see the module)."""
        form = self._forms.get(form_id)
        if form is None:
            return 404, _error("NotFoundException", f"Checkout form {form_id} not found"), []
        self.shipment_posts[form_id] += 1
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, _error("VALIDATION_ERROR", "Malformed JSON"), []
        if not isinstance(body, dict):
            return 400, _error("VALIDATION_ERROR", "The body must be an object"), []
        carrier_id, waybill, name = body.get("carrierId"), body.get("waybill"), body.get("carrierName")
        if carrier_id not in {c["id"] for c in self.carriers}:
            return 400, _error("VALIDATION_ERROR", f"carrierId: unknown carrier id {carrier_id!r}"), []
        if not isinstance(waybill, str) or not waybill.strip() or len(waybill) > MAX_WAYBILL:
            return 400, _error("VALIDATION_ERROR", f"waybill: required, 1..{MAX_WAYBILL} characters"), []
        if name is not None and (not isinstance(name, str) or len(name) > MAX_CARRIER_NAME):
            return 400, _error("VALIDATION_ERROR", f"carrierName: at most {MAX_CARRIER_NAME} characters"), []
        items = body.get("lineItems")
        if items is None:
            items = []
        if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("id"), str)
                                                  for i in items):
            return 400, _error("VALIDATION_ERROR", "lineItems: each item needs an id"), []
        own = {line.id for line in form.lines}
        wanted = [i["id"] for i in items]
        if any(line_id not in own for line_id in wanted):
            return 422, _error("VALIDATION_ERROR", "A line item does not belong to the order"), []
        if self.waybill_orders_limit is not None:
            elsewhere = sum(1 for f in self._forms.values()
                            if f.id != form.id and any(s["waybill"] == waybill for s in f.shipments))
            if elsewhere >= self.waybill_orders_limit:
                return 409, _error("WAYBILL_USAGE_EXCEEDED", "Maximum waybill usage exceeded"), []
        created = self._add_shipment(form, carrier_id, waybill, name if carrier_id == "OTHER" else None,
                                     wanted or [line.id for line in form.lines])
        if self.sent_on_tracking and form.fulfillment in BEFORE_SENT:
            form.fulfillment = "SENT"
            self._change(form, "FULFILLMENT_STATUS_CHANGED")
        return 201, created, []

    def _add_shipment(self, form: SimCheckoutForm, carrier_id: str, waybill: str, name: str | None,
                      line_ids: Sequence[str]) -> dict[str, Any]:
        """A CheckoutFormAddWaybillCreated; its id as the spec's example has it (base64 of "DHL:12345678910PL")."""
        created: dict[str, Any] = {"id": base64.b64encode(f"{carrier_id}:{waybill}".encode()).decode(),
                                   "waybill": waybill, "carrierId": carrier_id}
        if name:
            created["carrierName"] = name
        created["lineItems"] = [{"id": line_id} for line_id in line_ids]
        created["createdAt"] = _iso(self._stamp())
        form.shipments.append(created)
        return dict(created)

    def _list_returns(self, params: list[tuple[str, str]]) -> Answer:
        values = {k: v[-1] for k, v in _values(params).items()}
        try:
            limit, offset = int(values.get("limit", "100")), int(values.get("offset", "0"))
        except ValueError:
            return 400, _error("VALIDATION_ERROR", "limit and offset must be integers"), []
        if not 1 <= limit <= 1000 or offset < 0:
            return 400, _error("VALIDATION_ERROR", "limit must be 1..1000 and offset >= 0"), []
        ids = self._return_order
        if values.get("from"):
            try:
                ids = ids[ids.index(values["from"]) + 1:]
            except ValueError:
                ids = []
        bounds = {k: _parse_time(values[k]) for k in ("createdAt.gte", "createdAt.lte") if k in values}
        if any(v is None for v in bounds.values()):
            return 400, _error("VALIDATION_ERROR", "createdAt: not an ISO 8601 date-time"), []
        found = []
        for return_id in ids:
            item = self._returns[return_id]
            gte, lte = bounds.get("createdAt.gte"), bounds.get("createdAt.lte")
            if ((gte is None or item.created_at >= gte) and (lte is None or item.created_at <= lte)
                    and values.get("orderId") in (None, item.order_id) and values.get("status") in (None, item.status)
                    and values.get("customerReturnId") in (None, item.id)):
                found.append(item)
        page = found[offset:offset + limit]
        return 200, {"count": len(page), "customerReturns": [r.dto() for r in page]}, []

    def _reject(self, return_id: str, raw: bytes) -> Answer:
        item = self._returns.get(return_id)
        if item is None:
            return 404, _error("NotFoundException", f"Customer return {return_id} not found"), []
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, _error("VALIDATION_ERROR", "Malformed JSON"), []
        rejection = body.get("rejection") if isinstance(body, dict) else None
        code = rejection.get("code") if isinstance(rejection, dict) else None
        reason = rejection.get("reason") if isinstance(rejection, dict) else None
        if code not in REJECTION_CODES:
            return 400, _error("VALIDATION_ERROR", f"rejection.code must be one of {', '.join(REJECTION_CODES)}"), []
        if code == "REFUND_REJECTED" and not (isinstance(reason, str) and 1 <= len(reason) <= 250):
            return 400, _error("VALIDATION_ERROR", "rejection.reason (1..250 characters) is required for "
                                                   "REFUND_REJECTED"), []
        if item.status == "REJECTED" or item.rejection is not None:
            return 422, _error("CUSTOMER_RETURN_ALREADY_REJECTED", "The customer return has already been "
                                                                   "rejected"), []
        if item.status in ("FINISHED", "FINISHED_APT"):
            return 422, _error("CUSTOMER_RETURN_ALREADY_REFUNDED", "The customer return has been refunded"), []
        item.status = "REJECTED"
        item.rejection = {"code": code, "createdAt": _iso(self._stamp())}
        if reason is not None:
            item.rejection["reason"] = reason
        return 200, item.dto(), []

    def _list_refunds(self, params: list[tuple[str, str]]) -> Answer:
        values = _values(params)
        single = {k: v[-1] for k, v in values.items()}
        try:
            limit, offset = int(single.get("limit", "50")), int(single.get("offset", "0"))
        except ValueError:
            return 422, _error("VALIDATION_ERROR", "limit and offset must be integers"), []
        if not 1 <= limit <= 100 or offset < 0:
            return 422, _error("VALIDATION_ERROR", "limit must be 1..100 and offset >= 0"), []
        statuses = set(values.get("status", []))
        found = [r for r in (self._refunds[i] for i in self._refund_order)
                 if single.get("order.id") in (None, r.order_id) and single.get("payment.id") in (None, r.payment_id)
                 and single.get("id") in (None, r.id) and (not statuses or r.status in statuses)]
        page = found[offset:offset + limit]
        return 200, {"refunds": [r.dto() for r in page], "count": len(page), "totalCount": len(found)}, []

    def _post_refund(self, raw: bytes) -> Answer:
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, _error("VALIDATION_ERROR", "Malformed JSON"), []
        if not isinstance(body, dict):
            return 400, _error("VALIDATION_ERROR", "The body must be an object"), []
        command_id = body.get("commandId")
        canonical = json.dumps(body, sort_keys=True)
        if isinstance(command_id, str) and command_id:
            self.refund_posts[command_id] += 1
            known = self._refund_commands.get(command_id)
            if known is not None:
                refund = self._refunds[known]
                if refund.body != canonical:
                    return 422, _error("COMMAND_ID_ALREADY_USED", "commandId was already used for another "
                                                                   "refund"), []
                return 200, refund.dto(), []  # idempotent: the same command answers the same refund
        payment_id = (body.get("payment") or {}).get("id")
        order_id = (body.get("order") or {}).get("id")
        reason = body.get("reason")
        if not payment_id or not order_id or not command_id or reason not in REFUND_REASONS:
            return 422, _error("VALIDATION_ERROR", "payment.id, order.id, commandId and a valid reason are "
                                                   "required"), []
        form = self._forms.get(order_id)
        if form is None or form.payment.get("id") != payment_id:
            return 404, _error("NotFoundException", f"Payment {payment_id} not found for order {order_id}"), []
        if not form.paid:
            return 422, _error("PAYMENT_NOT_REFUNDABLE", "The payment was not made through Allegro (or not yet); "
                                                         "it cannot be refunded"), []
        items = body.get("lineItems") or []
        if not isinstance(items, list) or not items:
            return 422, _error("VALIDATION_ERROR", "lineItems: at least one line item is required"), []
        lines = {line.id: line for line in form.lines}
        changes: list[tuple[SimLine, int, Decimal]] = []
        for item in items:
            line = lines.get(item.get("id")) if isinstance(item, dict) else None
            if line is None:
                return 422, _error("VALIDATION_ERROR", f"line item {item!r} is not in the order"), []
            problem = self._refund_problem(line, item)
            if problem:
                return 422, _error("VALIDATION_ERROR", problem), []
            if item["type"] == "QUANTITY":
                changes.append((line, int(item["quantity"]), line.price * int(item["quantity"])))
            else:
                changes.append((line, 0, Decimal(item["value"]["amount"])))
        for line, quantity, amount in changes:
            line.refunded_quantity += quantity
            if not quantity:
                line.refunded_amount += amount
        refund = SimRefund(self._uuid(), command_id, canonical, payment_id, order_id, reason, self.refund_status,
                           self._stamp(), sum((a for _, _, a in changes), Decimal("0")), form.currency,
                           [dict(i) for i in items], body.get("sellerComment"))
        self._refunds[refund.id] = refund
        self._refund_order.append(refund.id)
        self._refund_commands[command_id] = refund.id
        return 200, refund.dto(), []

    @staticmethod
    def _refund_problem(line: SimLine, item: Mapping[str, Any]) -> str | None:
        """Why the vendor refuses one RefundLineItem (over-refunds; QUANTITY and AMOUNT on one line: #5896)."""
        if item.get("type") == "QUANTITY":
            quantity = item.get("quantity")
            if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
                return "QUANTITY needs a whole quantity of at least 1"
            if line.refunded_amount:
                return f"line {line.id} was refunded by AMOUNT; it cannot be refunded by QUANTITY"
            if line.refunded_quantity + quantity > line.quantity:
                return f"line {line.id}: {quantity} more than the {line.quantity - line.refunded_quantity} left"
            return None
        if item.get("type") == "AMOUNT":
            value = item.get("value") or {}
            try:
                amount = Decimal(str(value.get("amount")))
            except InvalidOperation:
                return "AMOUNT needs value.amount as a decimal string"
            if line.refunded_quantity:
                return f"line {line.id} was refunded by QUANTITY; it cannot be refunded by AMOUNT"
            if value.get("currency") != line.currency or amount <= 0:
                return "AMOUNT needs a positive value in the order's currency"
            if line.refunded_amount + amount > line.price * line.quantity:
                return f"line {line.id}: {amount} is more than is left to refund"
            return None
        return "lineItems[].type must be QUANTITY or AMOUNT"


def _values(params: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in params:
        out.setdefault(key, []).append(value)
    return out


def _not_allowed() -> Answer:
    return 405, _error("MethodNotAllowedException", "Method not allowed"), []
