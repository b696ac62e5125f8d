"""Pure functions between Allegro's Ship with Allegro payloads (``/shipment-management``) and the carrier
port's types. No I/O.

Sources: ``shared/specs/allegro/swagger.yaml`` (schemas named below) and ``shared/notes/allegro.md``,
section "Ship with Allegro". Every malformed or missing field of a vendor answer becomes a RetryableError
or PermanentError naming the call and the field, never a KeyError.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.carrier import (
    BookedParcel,
    Booking,
    LabelFormat,
    LabelSize,
    PickupWindow,
    ShipmentRequest,
    TrackingEvent,
    TrackingStatus,
)
from hub.kernel.types import Address

PUBLIC_MEDIA_TYPE = "application/vnd.allegro.public.v1+json"
BINARY_MEDIA_TYPE = "application/octet-stream"  # the label and the protocol (notes: "Label")
# Accept-Language is an enum in every /shipment-management operation: a bare "pl" is invalid (notes)
LANGUAGES = ("pl-PL", "en-US", "uk-UA", "sk-SK", "cs-CZ", "hu-HU")
PACKAGE_TYPES = ("PACKAGE", "DOX", "PALLET", "OTHER")  # PackageTypeDto
COMMAND_STATUSES = ("IN_PROGRESS", "SUCCESS", "ERROR")  # Create/Cancel/CreatePickup CommandStatusDto
MAX_TRACKING_WAYBILLS = 20  # GET /order/carriers/{carrierId}/tracking: waybill maxItems 20
MAX_PROPOSAL_SHIPMENTS = 100  # PickupProposalsRequestDto.shipmentIds maxItems 100

# Fixed namespace: uuid5(NAMESPACE, kind + reference) is the same command id on every attempt, so a
# retry finds the command the first attempt sent (GET .../create-commands/{commandId}).
COMMAND_NAMESPACE = uuid.UUID("8c7b1f3e-52a4-4d0e-9b6f-1e2d3c4b5a69")

# ParcelTrackingStatus.code (swagger.yaml) -> the hub's TrackingStatus. NOTICE_LEFT is "an unsuccessful
# delivery attempt": an exception the operator should see, not a parcel waiting at a point.
TRACKING_STATUS: dict[str, TrackingStatus] = {
    "PENDING": "pending",
    "IN_TRANSIT": "in_transit",
    "RELEASED_FOR_DELIVERY": "out_for_delivery",
    "AVAILABLE_FOR_PICKUP": "ready_for_pickup",
    "NOTICE_LEFT": "exception",
    "ISSUE": "exception",
    "DELIVERED": "delivered",
    "RETURNED": "returned",
}

# Allegro's carrier ids (swagger.yaml: Courier.id "ALLEGRO, DB_SCHENKER, DHL, DPD, DPD_SK, INPOST, ORLEN,
# POCZTA_POLSKA, SUUS, UPS"; AllegroCarrier "UPS, ALLEGRO_ONE_KURIER, DPD") -> the hub's operator names.
# ALLEGRO alone (no transporting carrier named) is Allegro's own network (One Kurier / One Box).
OPERATORS: dict[str, str] = {
    "INPOST": "inpost",
    "DPD": "dpd",
    "DPD_SK": "dpd",
    "POCZTA_POLSKA": "poczta-polska",
    "DHL": "dhl",
    "UPS": "ups",
    "GLS": "gls",
    "FEDEX": "fedex",
    "ORLEN": "orlen",
    "ALLEGRO": "allegro-one",
    "ALLEGRO_ONE_KURIER": "allegro-one",
}
# ShipmentDto.transport holds carrier names ("InPost", "DPD"): compared without case, blanks or dashes
_OPERATOR_NAMES: dict[str, str] = {
    "inpost": "inpost", "paczkomatyinpost": "inpost", "dpd": "dpd", "pocztapolska": "poczta-polska",
    "pocztex": "poczta-polska", "dhl": "dhl", "ups": "ups", "gls": "gls", "fedex": "fedex", "orlen": "orlen",
    "orlenpaczka": "orlen", "allegro": "allegro-one", "allegroone": "allegro-one",
    "allegroonekurier": "allegro-one", "allegroonebox": "allegro-one",
}
_PROPOSAL_NAME = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})")
_PROPOSAL_ID = re.compile(r"^(\d{8})(\d{4})(\d{4})$")  # the spec's example: '2023071210001300'


def command_id(kind: str, key: str) -> str:
    """Our command UUID for one create/cancel/pickup command, derived from our reference (or the
    shipment id for a cancel): every attempt sends, and looks up, the same command."""
    return str(uuid.uuid5(COMMAND_NAMESPACE, f"{kind}:{key}"))


# --- the create body ----------------------------------------------------------------------------


def split_service(service: str) -> tuple[str, str | None]:
    """The service code is the delivery method id, or ``deliveryMethodId:credentialsId`` for a method run
    on the seller's own carrier contract (DeliveryServiceIdDto: credentialsId is null for Allegro's)."""
    method, _, credentials = service.strip().partition(":")
    if not method:
        raise PermanentError(f"Allegro shipping: service {service!r} names no delivery method id")
    return method, credentials.strip() or None


def service_code(service: Mapping[str, Any]) -> str:
    """A DeliveryServiceDto's id as a service code (see ``split_service``)."""
    ident = service.get("id")
    method = ident.get("deliveryMethodId") if isinstance(ident, dict) else None
    if not isinstance(method, str) or not method:
        raise RetryableError("Allegro GET /shipment-management/delivery-services: a service without "
                             "id.deliveryMethodId")
    credentials = ident.get("credentialsId") if isinstance(ident, dict) else None
    return f"{method}:{credentials}" if isinstance(credentials, str) and credentials else method


def format_money(amount: Decimal, what: str) -> str:
    """CashOnDeliveryDto/InsuranceDto amounts: a string with two decimals (pattern \\d+[.,]\\d{1,2}). An
    amount that would need rounding is refused: rounding money is not the connector's call."""
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise PermanentError(f"Allegro shipping: {what} {amount!r} must be a positive Decimal")
    cents = amount.quantize(Decimal("0.01"))
    if cents != amount:
        raise PermanentError(f"Allegro shipping: {what} {amount} has more than two decimals")
    return f"{cents:.2f}"


def _weight(value: Decimal, where: str) -> int | float:
    """WeightValue.value is declared a number (its description and example show a string): send a number
    (notes). Kilograms to the gram; JSON has no decimal type, and a float's shortest repr of a value with
    three decimals is that value exactly ("1.25" -> 1.25)."""
    try:
        kg = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise PermanentError(f"Allegro shipping: {where}.weight_kg {value!r} is not a number") from None
    if not kg.is_finite() or kg <= 0:
        raise PermanentError(f"Allegro shipping: {where}.weight_kg {value} must be greater than 0")
    grams = kg.quantize(Decimal("0.001"))
    if grams != kg:
        raise PermanentError(f"Allegro shipping: {where}.weight_kg {value} is finer than a gram")
    return int(grams) if grams == grams.to_integral_value() else float(grams)


def _dimension(value: int | None, name: str, where: str) -> dict[str, Any]:
    if value is None:
        raise PermanentError(f"Allegro shipping: {where}.{name} is missing: Allegro needs every parcel's "
                             "length, width and height in cm (PackageRequestDto)")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise PermanentError(f"Allegro shipping: {where}.{name} {value!r} must be a whole number of cm above 0")
    return {"value": value, "unit": "CENTIMETER"}


def _phone(phone: str) -> str:
    return re.sub(r"[\s\-()]", "", phone)


def address_dto(address: Address, role: str, *, point: str | None = None) -> dict[str, Any]:
    """An AddressDto (SenderAddressDto / ReceiverAddressDto / PickupAddressDto): street, city, postal
    code, country, e-mail and phone are required, and a name or a company."""
    missing = [f for f in ("street", "city", "postal_code", "email", "phone") if not getattr(address, f)]
    if not address.name and not address.company:
        missing.insert(0, "name or company")
    if missing:
        extra = (" (the buyer's Allegro e-mail, …@allegromail.pl: Allegro ties the parcel to the order by it)"
                 if role == "receiver" and "email" in missing else "")
        raise PermanentError(f"Allegro shipping: the {role}'s {', '.join(missing)} missing{extra}")
    country = (address.country or "PL").upper()
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise PermanentError(f"Allegro shipping: the {role}'s country {address.country!r} is not an ISO 3166 code")
    out: dict[str, Any] = {}
    if address.name:
        out["name"] = address.name
    if address.company:
        out["company"] = address.company
    out.update(street=address.street, postalCode=address.postal_code, city=address.city, countryCode=country,
               email=address.email, phone=_phone(address.phone or ""))
    if point:
        out["point"] = point
    return out


def label_format_code(fmt: LabelFormat) -> str:
    """ShipmentCreateRequestDto.labelFormat: PDF | ZPL."""
    code = str(fmt).upper()
    if code not in ("PDF", "ZPL"):
        raise PermanentError(f"Allegro shipping: label format {fmt!r} is not pdf or zpl")
    return code


def create_command(request: ShipmentRequest, command: str,
                   template_sizes: Mapping[str, Sequence[int]] | None = None) -> dict[str, Any]:
    """The ShipmentCreateCommandDto for a request (PermanentError for what Allegro cannot take).

    Allegro needs every package's dimensions, lockers too: a parcel that has only a locker template
    ("small", "medium", "large") takes the (length, width, height) the connector's options give it.

    The body has no order id: Allegro ties the shipment to the order by the receiver's e-mail (notes,
    allegro-api #10176), so the receiver's e-mail must be the buyer's Allegro address. ``request.options``
    may carry ``sender_point`` (a drop-off point), ``package_type`` (PackageTypeDto) and
    ``additional_services`` (comma-separated ids from delivery-services)."""
    method, credentials = split_service(request.service)
    if not request.parcels:
        raise PermanentError(f"Allegro shipping: shipment {request.reference} has no parcels")
    package_type = (request.options.get("package_type") or "PACKAGE").upper()
    if package_type not in PACKAGE_TYPES:
        raise PermanentError(f"Allegro shipping: options.package_type {package_type!r} is not one of "
                             f"{', '.join(PACKAGE_TYPES)}")
    packages = []
    for i, parcel in enumerate(request.parcels, 1):
        where = f"parcel {i}"
        sizes: tuple[int | None, ...] = (parcel.length_cm, parcel.width_cm, parcel.height_cm)
        if None in sizes and parcel.template and template_sizes and parcel.template in template_sizes:
            sizes = tuple(template_sizes[parcel.template])
        elif None in sizes and parcel.template:
            where = f"{where} (template {parcel.template!r}: map it in the connector's template_sizes)"
        package: dict[str, Any] = {
            "type": package_type,
            "length": _dimension(sizes[0], "length_cm", where),
            "width": _dimension(sizes[1], "width_cm", where),
            "height": _dimension(sizes[2], "height_cm", where),
            "weight": {"value": _weight(parcel.weight_kg, where), "unit": "KILOGRAMS"},
        }
        if request.content:
            package["textOnLabel"] = request.content
        packages.append(package)
    body: dict[str, Any] = {"deliveryMethodId": method}
    if credentials:
        body["credentialsId"] = credentials
    point = request.pickup_point.id if request.pickup_point is not None else None
    body.update(
        sender=address_dto(request.sender, "sender", point=request.options.get("sender_point") or None),
        receiver=address_dto(request.receiver, "receiver", point=point),
        referenceNumber=request.reference,
        packages=packages,
    )
    if request.insurance is not None:
        body["insurance"] = {"amount": format_money(request.insurance, "insurance"), "currency": request.currency}
    if request.cod is not None:
        iban = re.sub(r"\s", "", request.cod.bank_account or "").upper()
        if not iban:
            raise PermanentError("Allegro shipping: cash on delivery needs the bank account (IBAN) to pay it to")
        body["cashOnDelivery"] = {
            "amount": format_money(request.cod.amount, "cash on delivery"), "currency": request.cod.currency,
            "ownerName": request.sender.company or request.sender.name, "iban": iban,
        }
    body["labelFormat"] = label_format_code(request.label_format)
    services = [s.strip() for s in request.options.get("additional_services", "").split(",") if s.strip()]
    if services:
        body["additionalServices"] = services
    return {"commandId": command, "input": body}


# --- answers ------------------------------------------------------------------------------------


def error_text(errors: Any) -> str:
    """Allegro's errors (Error400: code, message, userMessage, path) in one line for the operator."""
    if not isinstance(errors, list) or not errors:
        return "no reason given"
    parts = []
    for error in errors:
        if not isinstance(error, dict):
            parts.append(str(error))
            continue
        text = error.get("userMessage") or error.get("message") or error.get("details") or "error"
        code, path = error.get("code"), error.get("path")
        parts.append(f"{text}" + (f" [{code}]" if code else "") + (f" (field {path})" if path else ""))
    return "; ".join(parts)


def command_status(payload: Any, call: str) -> str:
    """IN_PROGRESS | SUCCESS | ERROR of a command status, or RetryableError naming the field."""
    status = payload.get("status") if isinstance(payload, dict) else None
    if status not in COMMAND_STATUSES:
        raise RetryableError(f"Allegro {call}: status {status!r} is not one of {', '.join(COMMAND_STATUSES)}")
    return str(status)


def required_str(payload: Any, key: str, call: str) -> str:
    value = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(value, str) or not value:
        raise RetryableError(f"Allegro {call}: the answer has no {key}")
    return value


def operator_of(shipment: Mapping[str, Any]) -> str:
    """Who delivers, as the hub names carriers: the carrier transporting the packages
    (packages[].transportingInfo[].carrierId), else the names in ``transport``, else ``carrier``."""
    for package in shipment.get("packages") or []:
        for info in (package.get("transportingInfo") or []) if isinstance(package, dict) else []:
            carrier = info.get("carrierId") if isinstance(info, dict) else None
            if isinstance(carrier, str) and carrier.upper() in OPERATORS:
                return OPERATORS[carrier.upper()]
    for name in shipment.get("transport") or []:
        if isinstance(name, str):
            key = re.sub(r"[\s_\-.]", "", name.lower())
            if key in _OPERATOR_NAMES:
                return _OPERATOR_NAMES[key]
    carrier = shipment.get("carrier")
    if isinstance(carrier, str) and carrier.upper() in OPERATORS:
        return OPERATORS[carrier.upper()]
    return "other"


def booking_from_shipment(reference: str, command: str, shipment: Any, parcels: int) -> Booking:
    """A Booking from a ShipmentDto (GET /shipment-management/shipments/{id}): one waybill per package,
    in the order sent. A package without its waybill yet is RetryableError (the carrier assigns it)."""
    call = "GET /shipment-management/shipments/{shipmentId}"
    if not isinstance(shipment, dict):
        raise RetryableError(f"Allegro {call}: not a JSON object")
    shipment_id = required_str(shipment, "id", call)
    packages = shipment.get("packages")
    if not isinstance(packages, list) or not packages:
        raise RetryableError(f"Allegro {call}: shipment {shipment_id} has no packages")
    if len(packages) != parcels:
        raise PermanentError(f"Allegro shipping: shipment {shipment_id} ({reference}) has {len(packages)} packages "
                             f"for {parcels} parcels; check it in Allegro before booking again")
    booked = []
    for i, package in enumerate(packages, 1):
        waybill = package.get("waybill") if isinstance(package, dict) else None
        if not isinstance(waybill, str) or not waybill:
            raise RetryableError(f"Allegro {call}: package {i} of shipment {shipment_id} has no waybill yet")
        booked.append(BookedParcel(tracking_number=waybill))
    handles = {"command_id": command}
    if isinstance(shipment.get("labelFormat"), str):
        handles["label_format"] = shipment["labelFormat"]
    if isinstance(shipment.get("carrier"), str) and shipment["carrier"]:
        handles["carrier_id"] = shipment["carrier"]
    return Booking(reference=reference, external_id=shipment_id, parcels=booked, operator=operator_of(shipment),
                   handles=handles)


def label_request(shipment_ids: Sequence[str], fmt: LabelFormat, size: LabelSize) -> dict[str, Any]:
    """LabelRequestDto: pageSize only for a PDF (the spec: "Only for PDF file")."""
    body: dict[str, Any] = {"shipmentIds": list(shipment_ids)}
    if label_format_code(fmt) == "PDF":
        if size not in ("A4", "A6"):
            raise PermanentError(f"Allegro shipping: label size {size!r} is not A4 or A6")
        body["pageSize"] = size
    return body


# --- pickups ------------------------------------------------------------------------------------


def _hhmm(value: str) -> time | None:
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        return None


def _proposal_window(item: Any) -> PickupWindow | None:
    """A PickupDateProposalDto as a window: its name reads "2023-07-12 10:00-13:00" and its id
    "2023071210001300" in the spec's examples; an item in neither form is left out."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return None
    found = _PROPOSAL_NAME.match(item.get("name") or "")
    try:
        if found:
            day, start, end = date.fromisoformat(found.group(1)), _hhmm(found.group(2)), _hhmm(found.group(3))
        elif (digits := _PROPOSAL_ID.match(item["id"])) is not None:
            day = datetime.strptime(digits.group(1), "%Y%m%d").date()  # noqa: DTZ007 (a date, no time)
            start = _hhmm(f"{digits.group(2)[:2]}:{digits.group(2)[2:]}")
            end = _hhmm(f"{digits.group(3)[:2]}:{digits.group(3)[2:]}")
        else:
            return None
    except ValueError:
        return None
    if start is None or end is None or end <= start:
        return None
    return PickupWindow(day=day, start=start, end=end, proposal_id=item["id"])


def pickup_windows(answer: Any, shipment_ids: Sequence[str], day: date) -> list[PickupWindow]:
    """The windows on ``day`` that every shipment was offered (one pickup takes one proposal id for all
    its shipments), from POST /shipment-management/pickup-proposals (PickupProposalsResponseDto[])."""
    if not isinstance(answer, list):
        raise RetryableError("Allegro POST /shipment-management/pickup-proposals: the answer is not a list")
    offered: dict[str, list[PickupWindow]] = {}
    for response in answer:
        for proposal in (response.get("proposals") or []) if isinstance(response, dict) else []:
            if not isinstance(proposal, dict) or not isinstance(proposal.get("shipmentId"), str):
                continue
            windows = [w for w in map(_proposal_window, proposal.get("proposalItems") or []) if w is not None]
            offered.setdefault(proposal["shipmentId"], []).extend(windows)
    common: list[PickupWindow] | None = None
    for shipment_id in shipment_ids:
        mine = [w for w in offered.get(shipment_id, []) if w.day == day]
        common = mine if common is None else [w for w in common if w in mine]
    unique: dict[str | None, PickupWindow] = {}
    for window in common or []:
        unique.setdefault(window.proposal_id, window)
    return sorted(unique.values(), key=lambda w: (w.start, w.end))


# --- tracking -----------------------------------------------------------------------------------


def parse_time(value: Any, call: str, field: str) -> datetime:
    """An ISO 8601 time as an aware UTC datetime (Allegro's times are UTC: notes "Time zone")."""
    if not isinstance(value, str):
        raise RetryableError(f"Allegro {call}: {field} is missing")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RetryableError(f"Allegro {call}: {field} {value!r} is not an ISO 8601 time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def tracking_events(answer: Any, carrier_id: str) -> list[TrackingEvent]:
    """TrackingEvents from a CarrierParcelTrackingResponse; a waybill without trackingDetails has none yet.
    An unknown status code is kept (``code``) as an exception the operator looks at."""
    call = f"GET /order/carriers/{carrier_id}/tracking"
    waybills = answer.get("waybills") if isinstance(answer, dict) else None
    if not isinstance(waybills, list):
        raise RetryableError(f"Allegro {call}: the answer has no waybills list")
    events: list[TrackingEvent] = []
    for entry in waybills:
        waybill = required_str(entry, "waybill", call)
        details = entry.get("trackingDetails")
        if details is None:
            continue
        statuses = details.get("statuses") if isinstance(details, dict) else None
        if not isinstance(statuses, list):
            raise RetryableError(f"Allegro {call}: waybill {waybill} has trackingDetails without statuses")
        for status in statuses:
            code = required_str(status, "code", call)
            at = parse_time(status.get("occurredAt"), call, f"waybill {waybill} statuses.occurredAt")
            text = status.get("description") or status.get("details")
            events.append(TrackingEvent(tracking_number=waybill, status=TRACKING_STATUS.get(code, "exception"),
                                        occurred_at=at, code=code,
                                        description=text if isinstance(text, str) and text else None))
    return events
