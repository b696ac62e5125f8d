"""Pure functions between the carrier port's types and ShipX's JSON; no I/O.

Sources (InPost's own documentation, dokumentacja-inpost.atlassian.net/wiki/spaces/PL, "API ShipX"):
- the shipment we send: "Creating a shipment in the simplified mode" (pages/18153501): receiver, sender, parcels,
  service, custom_attributes.target_point, cod, insurance, reference (3 to 100 characters);
- parcels: "Shipment sizes and services" (pages/18153507): locker templates small/medium/large (A/B/C,
  8/19/41 x 38 x 64 cm, up to 25 kg; xlarge 50 x 50 x 80 cm for inpost_courier_c2c only), otherwise dimensions
  in mm and weight in kg, as strings;
- a party's shape (company_name, first_name, last_name, email, phone, address{street, building_number, city,
  post_code, country_code}): the shipment example on "Offer selection" (pages/18153613);
- tracking: "Shipment Tracking" (pages/18153479): ``tracking_details`` newest first, each {status, origin_status,
  agency, datetime};
- dispatch orders: "Dispatch Order" (pages/18153482): {shipments, address, comment} and, per the research notes,
  name, phone and email of the contact.

Money goes out as a string with two decimals ("12.50"), never a float. ShipX's times carry an offset; one
without is Europe/Warsaw. Inside, times are UTC.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hub.kernel.calendar import polish_holidays
from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.carrier import (
    BookedParcel,
    Booking,
    Parcel,
    PickupRequest,
    PickupWindow,
    ShipmentRequest,
    TrackingEvent,
    TrackingStatus,
)
from hub.kernel.types import Address

OPERATOR = "inpost"
WARSAW = ZoneInfo("Europe/Warsaw")
_CENT = Decimal("0.01")

# before these, ShipX is still preparing and buying the offer (asynchronous); "confirmed" has a label
PRE_CONFIRMATION = frozenset({"created", "offers_prepared", "offer_selected"})
CANCELED = "canceled"
# ShipX cancels a shipment only in these (the 1.23.0 page: created, offers_prepared; the PL page adds
# offer_selected)
CANCELLABLE = frozenset({"created", "offers_prepared", "offer_selected"})

# locker templates: name -> the longest, middle and shortest side allowed, in cm ("Shipment sizes and services")
LOCKER_TEMPLATES: dict[str, tuple[int, int, int]] = {"small": (64, 38, 8), "medium": (64, 38, 19),
                                                     "large": (64, 38, 41)}
C2C_TEMPLATES: dict[str, tuple[int, int, int]] = {**LOCKER_TEMPLATES, "xlarge": (80, 50, 50)}
TEMPLATE_MAX_KG = Decimal(25)
# InPost's size letters as sellers know them (the port's Parcel.template takes small/medium/large)
TEMPLATE_ALIASES = {"a": "small", "b": "medium", "c": "large", "d": "xlarge"}

# ShipX status name -> the hub's status. Names: "Statuses" (pages/18153478, GET /v1/statuses) and the tracking
# pages. Anything not listed is "exception": an operator looks at a code the connector does not know.
STATUS_MAP: dict[str, TrackingStatus] = {
    **dict.fromkeys(("created", "offers_prepared", "offer_selected", "confirmed"), "pending"),
    **dict.fromkeys((
        "dispatched_by_sender", "dispatched_by_sender_to_pok", "collected_from_sender", "taken_by_courier",
        "taken_by_courier_from_pok", "taken_by_courier_from_customer_service_point", "adopted_at_source_branch",
        "sent_from_source_branch", "adopted_at_sorting_center", "sent_from_sorting_center",
        "adopted_at_target_branch", "readdressed", "redirect_to_box", "permanently_redirected_to_box_machine",
        "permanently_redirected_to_customer_service_point", "unstack_from_box_machine",
        "unstack_from_customer_service_point", "delay_in_delivery",
    ), "in_transit"),
    **dict.fromkeys(("out_for_delivery", "out_for_delivery_to_address"), "out_for_delivery"),
    **dict.fromkeys((
        "ready_to_pickup", "ready_to_pickup_from_pok", "ready_to_pickup_from_pok_registered",
        "ready_to_pickup_from_branch", "pickup_reminder_sent", "pickup_reminder_sent_address",
        "stack_in_box_machine", "stack_in_customer_service_point", "courier_avizo_in_customer_service_point",
    ), "ready_for_pickup"),
    **dict.fromkeys(("delivered", "picked_up"), "delivered"),
    "returned_to_sender": "returned",
    **dict.fromkeys((
        "avizo", "pickup_time_expired", "stack_parcel_pickup_time_expired",
        "stack_parcel_in_box_machine_pickup_time_expired", "undelivered", "undelivered_wrong_address",
        "undelivered_incomplete_address", "undelivered_unknown_receiver", "undelivered_cod_cash_receiver",
        "rejected_by_receiver", "oversized", "missing", "claimed", "claim_rejected", "canceled",
        "canceled_redirect_to_box",
    ), "exception"),
}


class ShipXFormatError(RetryableError):
    """ShipX answered something the connector cannot read (a missing or mistyped field): the queue tries
    again later; the message names the call and the field."""


def hub_status(code: str) -> TrackingStatus:
    return STATUS_MAP.get(code, "exception")


def is_known_status(code: str) -> bool:
    return code in STATUS_MAP


def is_locker(service: str) -> bool:
    """Locker services take one parcel of a template and a target point ("Multi-parcel shipments can only
    be created for courier services")."""
    return service.startswith("inpost_locker")


# --- what we send ----------------------------------------------------------------------------------------

def money(amount: Decimal) -> str:
    """An amount as ShipX takes it, to the grosz: "12.50"."""
    return str(amount.quantize(_CENT, rounding=ROUND_HALF_UP))


def kilograms(weight: Decimal) -> str:
    """A weight as a plain decimal string: "1.5", never "1.50E+0"."""
    return format(weight.normalize(), "f")


_STREET = re.compile(r"^(?P<street>.*?\D)\s+(?P<number>\d+[A-Za-z]?(?:\s*[/\-]\s*\d+[A-Za-z]?)?"
                     r"(?:\s*(?:m\.?|lok\.?)\s*\d+[A-Za-z]?)?)$")


def split_street(street: str) -> tuple[str, str | None]:
    """"ul. Długa 5/3" -> ("ul. Długa", "5/3"). ShipX takes the street and the building number apart; a street
    with no number at the end goes whole, with no building number (ShipX's own example sends "Zawila 65L" so)."""
    text = " ".join(street.split())
    match = _STREET.match(text)
    if not match:
        return text, None
    return match.group("street").rstrip(" ,"), match.group("number")


def split_name(name: str) -> tuple[str, str | None]:
    """"Jan Maria Kowalski" -> ("Jan Maria", "Kowalski"); one word is the first name only."""
    parts = name.split()
    if len(parts) < 2:
        return name.strip(), None
    return " ".join(parts[:-1]), parts[-1]


def phone_number(phone: str | None, country: str) -> str | None:
    """Digits only; a Polish number without its +48 / 0048 (ShipX's examples carry nine digits)."""
    if not phone:
        return None
    digits = re.sub(r"\D", "", phone)
    if country.upper() == "PL":
        for prefix in ("0048", "48"):
            if digits.startswith(prefix) and len(digits) == 9 + len(prefix):
                digits = digits[len(prefix):]
    return digits or None


def post_code(code: str, country: str) -> str:
    """A Polish code as NN-NNN (an ERP may hold "30001")."""
    text = code.strip()
    if country.upper() == "PL" and re.fullmatch(r"\d{5}", text):
        return f"{text[:2]}-{text[2:]}"
    return text


def _compact(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}


def address_json(address: Address) -> dict[str, Any]:
    street, number = split_street(address.street)
    return _compact({"street": street, "building_number": number, "city": address.city.strip(),
                     "post_code": post_code(address.postal_code, address.country),
                     "country_code": address.country.upper()})


def party(address: Address) -> dict[str, Any]:
    """A sender or receiver ("Peer")."""
    first, last = split_name(address.name)
    return _compact({
        "company_name": address.company or None,
        "first_name": first or None,
        "last_name": last,
        "email": address.email or None,
        "phone": phone_number(address.phone, address.country),
        "address": address_json(address),
    })


def _refused(reference: str, what: str) -> PermanentError:
    return PermanentError(f"InPost book {reference}: {what}")


def _sides(parcel: Parcel) -> tuple[int, int, int] | None:
    if parcel.length_cm is None or parcel.width_cm is None or parcel.height_cm is None:
        return None
    longest, middle, shortest = sorted((parcel.length_cm, parcel.width_cm, parcel.height_cm), reverse=True)
    return longest, middle, shortest


def template_for(parcel: Parcel, service: str, reference: str, n: int) -> str:
    """The parcel's locker template: the one asked for, or the smallest its dimensions fit."""
    templates = C2C_TEMPLATES if service == "inpost_courier_c2c" else LOCKER_TEMPLATES
    if parcel.template:
        name = TEMPLATE_ALIASES.get(parcel.template.strip().lower(), parcel.template.strip().lower())
        if name not in templates:
            raise _refused(reference, f"parcel {n}: template {parcel.template!r} is not one of "
                                      f"{', '.join(templates)} for {service}")
        return name
    sides = _sides(parcel)
    if sides is None:
        raise _refused(reference, f"parcel {n}: {service} needs a template (small, medium, large) or all three "
                                  "dimensions to choose one")
    for name, limit in templates.items():
        if all(s <= m for s, m in zip(sides, limit, strict=True)):
            return name
    raise _refused(reference, f"parcel {n}: {sides[0]} x {sides[1]} x {sides[2]} cm fits no locker template "
                              f"of {service} (largest {' x '.join(map(str, list(templates.values())[-1]))} cm)")


def parcel_json(parcel: Parcel, service: str, reference: str, n: int) -> dict[str, Any]:
    if parcel.weight_kg <= 0:
        raise _refused(reference, f"parcel {n}: weight {parcel.weight_kg} kg must be more than 0")
    weight = {"amount": kilograms(parcel.weight_kg), "unit": "kg"}
    if is_locker(service) or (service == "inpost_courier_c2c" and (parcel.template or _sides(parcel) is None)):
        if parcel.weight_kg > TEMPLATE_MAX_KG:
            raise _refused(reference, f"parcel {n}: {parcel.weight_kg} kg is over the {TEMPLATE_MAX_KG} kg a "
                                      "locker template takes")
        return {"template": template_for(parcel, service, reference, n), "weight": weight}
    sides = _sides(parcel)
    if sides is None:
        raise _refused(reference, f"parcel {n}: {service} needs the parcel's length, width and height")
    assert parcel.length_cm is not None and parcel.width_cm is not None and parcel.height_cm is not None
    return {
        "dimensions": {"length": str(parcel.length_cm * 10), "width": str(parcel.width_cm * 10),
                       "height": str(parcel.height_cm * 10), "unit": "mm"},
        "weight": weight,
        "is_non_standard": False,
    }


@dataclass(frozen=True)
class ShipmentRules:
    """What the account's options add to a request."""

    sending_method: str = "dispatch_order"
    dropoff_point: str | None = None
    insurance_required: frozenset[str] = frozenset()
    default_insurance: Decimal | None = None


def shipment_payload(request: ShipmentRequest, rules: ShipmentRules) -> dict[str, Any]:
    """The body of POST /v1/organizations/{org}/shipments (simplified mode: the service is named, so ShipX
    selects and buys the offer by itself). Refuses, before any call, what ShipX would refuse for sure."""
    ref = request.reference
    if not 3 <= len(ref) <= 100:
        raise _refused(ref, f"the reference must have 3 to 100 characters for ShipX, it has {len(ref)}")
    if not request.parcels:
        raise _refused(ref, "no parcels")
    locker = is_locker(request.service)
    if locker and len(request.parcels) > 1:
        raise _refused(ref, f"{request.service} takes one parcel per shipment ({len(request.parcels)} given): "
                            "book one shipment per parcel")
    if locker and request.pickup_point is None:
        raise _refused(ref, f"{request.service} needs the locker the buyer chose (pickup_point)")
    receiver = party(request.receiver)
    if locker and not (receiver.get("phone") and receiver.get("email")):
        raise _refused(ref, "a locker shipment needs the receiver's phone and e-mail (InPost sends the pickup code)")
    body: dict[str, Any] = {
        "receiver": receiver,
        "sender": party(request.sender),
        "parcels": [parcel_json(p, request.service, ref, n) for n, p in enumerate(request.parcels, start=1)],
        "service": request.service,
        "reference": ref,
    }
    attributes: dict[str, Any] = {}
    if request.pickup_point is not None:
        attributes["target_point"] = request.pickup_point.id
    sending_method = request.options.get("sending_method", rules.sending_method)
    attributes["sending_method"] = sending_method
    dropoff = request.options.get("dropoff_point", rules.dropoff_point)
    if dropoff:
        attributes["dropoff_point"] = dropoff
    body["custom_attributes"] = attributes
    if request.cod is not None:
        if request.cod.amount <= 0:
            raise _refused(ref, f"cash on delivery of {request.cod.amount} {request.cod.currency} must be over 0")
        body["cod"] = {"amount": money(request.cod.amount), "currency": request.cod.currency.upper()}
    insurance = request.insurance
    if insurance is None and request.service in rules.insurance_required:
        insurance = rules.default_insurance
        if insurance is None:
            raise _refused(ref, f"{request.service} requires insurance: send the declared value, or set the "
                                "connector's default_insurance")
    if insurance is not None:
        body["insurance"] = {"amount": money(insurance), "currency": request.currency.upper()}
    return body


def dispatch_comment(reference: str, window: PickupWindow) -> str:
    """Our reference in the dispatch order's comment, so a retry finds the order (ShipX has no reference
    field on dispatch orders); the window is for the courier, ShipX takes no date."""
    return f"hub:{reference} {window.day.isoformat()} {window.start:%H:%M}-{window.end:%H:%M}"


_COMMENT_REF = re.compile(r"(?:^|\s)hub:(\S+)")


def dispatch_references(order: Mapping[str, Any]) -> set[str]:
    """Our references in a dispatch order's comment(s) (``comment`` or the ``comments`` list)."""
    texts: list[str] = []
    if isinstance(order.get("comment"), str):
        texts.append(order["comment"])
    for item in order.get("comments") or []:
        if isinstance(item, Mapping) and isinstance(item.get("comment"), str):
            texts.append(item["comment"])
        elif isinstance(item, str):
            texts.append(item)
    return {m.group(1) for text in texts for m in _COMMENT_REF.finditer(text)}


def dispatch_order_payload(request: PickupRequest, shipment_ids: Sequence[int], *, phone: str | None,
                           email: str | None) -> dict[str, Any]:
    address = request.address
    contact_phone = phone_number(address.phone, address.country) or phone_number(phone, address.country)
    contact_email = address.email or email
    if not contact_phone:
        raise PermanentError(f"InPost pickup {request.reference}: the courier needs a contact phone: give the "
                             "pickup address a phone or set the connector's pickup_contact_phone")
    return _compact({
        "shipments": [int(s) for s in shipment_ids],
        "comment": dispatch_comment(request.reference, request.window),
        "name": address.company or address.name,
        "phone": contact_phone,
        "email": contact_email,
        "address": address_json(address),
    })


# --- what ShipX answers --------------------------------------------------------------------------------------

def field(obj: Any, key: str, call: str, kind: type | tuple[type, ...] = object) -> Any:
    """``obj[key]``, or ShipXFormatError naming the call and the field."""
    if not isinstance(obj, Mapping):
        raise ShipXFormatError(f"InPost ShipX {call}: expected a JSON object, got {type(obj).__name__}")
    if key not in obj or obj[key] is None:
        raise ShipXFormatError(f"InPost ShipX {call}: the answer has no {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ShipXFormatError(f"InPost ShipX {call}: {key!r} is {value!r}, not what ShipX documents")
    return value


def items(body: Any, call: str) -> list[Mapping[str, Any]]:
    """The ``items`` of a ShipX list ({href, count, page, per_page, items})."""
    found = field(body, "items", call, list)
    if not all(isinstance(i, Mapping) for i in found):
        raise ShipXFormatError(f"InPost ShipX {call}: 'items' holds something other than objects")
    return found


def shipment_id(shipment: Any, call: str) -> int:
    value = field(shipment, "id", call, (int, str))
    try:
        return int(value)
    except ValueError:
        raise ShipXFormatError(f"InPost ShipX {call}: 'id' is {value!r}, not a number") from None


def shipment_status(shipment: Any, call: str) -> str:
    return str(field(shipment, "status", call, str))


def is_confirmed(status: str) -> bool:
    return status not in PRE_CONFIRMATION and status != CANCELED


def booking(reference: str, shipment: Mapping[str, Any], parcels: int, call: str) -> Booking:
    """The booking of a confirmed shipment: a tracking number per parcel, in the order sent."""
    sid = shipment_id(shipment, call)
    main = shipment.get("tracking_number")
    answered = shipment.get("parcels")
    numbers: list[BookedParcel] = []
    if isinstance(answered, list) and len(answered) == parcels and all(
            isinstance(p, Mapping) and p.get("tracking_number") for p in answered):
        numbers = [BookedParcel(str(p["tracking_number"]), str(p["id"]) if p.get("id") is not None else None)
                   for p in answered]
    elif parcels == 1 and isinstance(main, str) and main:
        parcel_id = None
        if isinstance(answered, list) and len(answered) == 1 and isinstance(answered[0], Mapping):
            parcel_id = answered[0].get("id")
        numbers = [BookedParcel(main, str(parcel_id) if parcel_id is not None else None)]
    else:
        raise ShipXFormatError(f"InPost ShipX {call}: shipment {sid} is {shipment.get('status')} but has no "
                               f"tracking number for each of its {parcels} parcel(s)")
    service = shipment.get("service")
    handles = {"service": str(service)} if service else {}
    return Booking(reference=reference, external_id=str(sid), parcels=numbers, operator=OPERATOR, handles=handles)


def parse_time(value: Any, call: str) -> datetime:
    """A ShipX time as UTC; one without an offset is Warsaw's."""
    if not isinstance(value, str):
        raise ShipXFormatError(f"InPost ShipX {call}: a time is {value!r}, not an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ShipXFormatError(f"InPost ShipX {call}: {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=WARSAW)
    return parsed.astimezone(UTC)


def shipx_time(moment: datetime) -> str:
    """A UTC time as ShipX's filters take it (ISO 8601 with Warsaw's offset)."""
    return moment.astimezone(WARSAW).isoformat(timespec="seconds")


def tracking_events(tracking_number: str, body: Any, titles: Mapping[str, str] | None = None) -> list[TrackingEvent]:
    """GET /v1/tracking/{number} as events, oldest first (ShipX lists them newest first)."""
    call = f"GET /v1/tracking/{tracking_number}"
    details = body.get("tracking_details") if isinstance(body, Mapping) else None
    if details is None:
        if isinstance(body, Mapping):
            return []  # the sandbox returns no statuses
        raise ShipXFormatError(f"InPost ShipX {call}: expected a JSON object")
    if not isinstance(details, list):
        raise ShipXFormatError(f"InPost ShipX {call}: 'tracking_details' is not a list")
    events = []
    for n, detail in reversed(list(enumerate(details))):  # oldest first; ties keep ShipX's order
        where = f"{call} tracking_details[{n}]"
        code = str(field(detail, "status", where, str))
        agency = detail.get("agency") if isinstance(detail.get("agency"), str) else None
        events.append(TrackingEvent(
            tracking_number=tracking_number, status=hub_status(code),
            occurred_at=parse_time(field(detail, "datetime", where), where), code=code,
            description=(titles or {}).get(code), location=agency or None))
    events.sort(key=lambda e: e.occurred_at)  # stable: equal times stay in the order ShipX gave
    return events


def status_titles(body: Any) -> dict[str, str]:
    """GET /v1/statuses as name -> title (best effort: a dictionary for the operator, never required)."""
    entries = body.get("items") if isinstance(body, Mapping) else body
    if not isinstance(entries, list):
        return {}
    return {str(e["name"]): str(e["title"]) for e in entries
            if isinstance(e, Mapping) and isinstance(e.get("name"), str) and isinstance(e.get("title"), str)}


# --- pickup windows (ShipX has none: configured) ------------------------------------------------------------

@dataclass(frozen=True)
class PickupPolicy:
    start: time
    end: time
    weekdays: tuple[int, ...]
    same_day_cutoff: time
    skip_holidays: bool


def pickup_windows(day: date, now: datetime, policy: PickupPolicy) -> list[PickupWindow]:
    """The configured window on ``day`` (Warsaw's calendar), or none: a past day, a day off, today after the
    cut-off."""
    today = now.astimezone(WARSAW)
    if day < today.date() or day.weekday() not in policy.weekdays:
        return []
    if policy.skip_holidays and day in polish_holidays(day.year):
        return []
    if day == today.date() and today.time() >= policy.same_day_cutoff:
        return []
    return [PickupWindow(day=day, start=policy.start, end=policy.end)]

