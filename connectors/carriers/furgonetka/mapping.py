"""Pure functions between Furgonetka's REST payloads and the carrier port's types (no I/O).

Field names come from public clients of Furgonetka's REST API (its own reference, furgonetka.pl/api/rest,
was not available to us), marked (u) where only one of them shows a field:
- Kwarcek/furgonetka-rest-api-php (API v1.0.23): src/Request/{Package,Order,Pickup,Cancel}Request.php and
  src/Entity/{AddressDetails,Parcel,Label,PickupDate,Cod,AdditionalServices}.php;
- commerce-link/shipping-furgonetka (Java, its tests quote sandbox answers): Furgonetka.java,
  {OrderCommandStatus,PickupCommandStatus,CancelCommandStatus,TrackingPackage,PickupDateProposals}Response.java.

Money goes on the wire as a JSON number with two decimals, written from the Decimal itself (never a
float); times inside are UTC, Furgonetka's are Warsaw local time.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.carrier import (
    BookedParcel,
    BookedPickup,
    Booking,
    LabelFormat,
    LabelSize,
    Parcel,
    PickupWindow,
    ShipmentRequest,
    TrackingEvent,
    TrackingStatus,
)
from hub.kernel.types import Address

WARSAW = ZoneInfo("Europe/Warsaw")
_CENT = Decimal("0.01")
_GRAM = Decimal("0.001")
# our command UUIDs: uuid5(this namespace, "<kind>:<our reference>") -- the same reference always names the
# same order, pickup or cancel command, so repeating the PUT can never start a second one
COMMAND_NAMESPACE = uuid.UUID("5b0f3a52-8a0c-4d52-9d0e-6f7572676f6e")

# Furgonetka's carrier ("service") -> who delivers, as the hub names carriers (Booking.operator)
OPERATORS: dict[str, str] = {
    "inpost": "inpost", "dpd": "dpd", "poczta": "poczta-polska", "dhl": "dhl", "ups": "ups", "gls": "gls",
    "fedex": "fedex", "orlen": "orlen",
}

# A command's status (commerce-link Furgonetka.java and its tests: waiting, queueing, running, successful,
# partial_success, error); anything else is taken as still running.
COMMAND_DONE = frozenset({"successful", "partial_success"})
COMMAND_FAILED = frozenset({"error"})

# Tracking states seen in the material (commerce-link: Furgonetka.cancelShipment's cancelable states
# waiting/ordered/collect-problem, "canceled", and the webhook's collected/delivered). A state we do not
# know yet is reported as in_transit with its code kept, so an operator sees it (u: no full list found).
STATUSES: dict[str, TrackingStatus] = {
    "waiting": "pending",
    "ordered": "pending",
    "collect-problem": "exception",
    "collected": "in_transit",
    "delivered": "delivered",
    "canceled": "exception",
}
UNKNOWN_STATE_STATUS: TrackingStatus = "in_transit"
# package states in which nothing was handed to a courier yet: a draft in the basket, ordered, a failed
# collection (commerce-link: the states it lets a cancel command go out in)
CANCELLED_STATE = "canceled"
DRAFT_STATE = "waiting"

LABEL_FILE_FORMATS: dict[str, str] = {"pdf": "pdf", "zpl": "zpl"}
LABEL_PAGE_FORMATS: dict[str, str] = {"A4": "a4", "A6": "a6"}


# --- wire encoding ---------------------------------------------------------------------------


def to_json(payload: Any) -> bytes:
    """Compact JSON with Decimals written as numbers from their own digits: ``json`` refuses them, and a
    float on the way could turn 149.90 into 149.89999."""
    return _encode(payload).encode()


def _encode(value: Any) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a finite amount: {value}")
        return format(value, "f")
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{_encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def money(amount: Decimal) -> Decimal:
    return amount.quantize(_CENT, ROUND_HALF_UP)


def command_uuid(kind: str, reference: str) -> str:
    """The UUID of our ``kind`` command ("order", "pickup", "cancel") for ``reference``."""
    return str(uuid.uuid5(COMMAND_NAMESPACE, f"{kind}:{reference}"))


# --- requests ------------------------------------------------------------------------------


def address(addr: Address, point: str | None = None) -> dict[str, Any]:
    """AddressDetails (Kwarcek src/Entity/AddressDetails.php); ``point`` is a locker or point code."""
    return {
        "name": addr.name,
        "company": addr.company or "",
        "street": addr.street,
        "postcode": addr.postal_code,
        "city": addr.city,
        "country_code": addr.country,
        "email": addr.email or "",
        "phone": addr.phone or "",
        "point": point or "",
    }


def _parcel(parcel: Parcel, value: Decimal, description: str, index: int) -> dict[str, Any]:
    """Parcel (Kwarcek src/Entity/Parcel.php): width, depth, height in cm, weight in kg, declared value."""
    missing = [name for name, size in (("length_cm", parcel.length_cm), ("width_cm", parcel.width_cm),
                                       ("height_cm", parcel.height_cm)) if size is None]
    if missing:
        raise PermanentError(f"Furgonetka needs every parcel's dimensions: parcel {index + 1} has no "
                             f"{', '.join(missing)} (a locker size alone is not enough)")
    return {
        "width": parcel.width_cm,
        "depth": parcel.length_cm,
        "height": parcel.height_cm,
        "weight": parcel.weight_kg.quantize(_GRAM, ROUND_HALF_UP).normalize() if parcel.weight_kg else Decimal(0),
        "value": money(value),
        "description": description,
    }


def _declared_values(total: Decimal | None, count: int) -> list[Decimal]:
    """The declared value spread over the parcels, the remainder on the first (Furgonetka takes a value
    per parcel, the hub one per shipment)."""
    if not total or count == 0:
        return [Decimal(0)] * count
    share = (total / count).quantize(_CENT, rounding="ROUND_DOWN")
    return [total - share * (count - 1)] + [share] * (count - 1)


def package_body(request: ShipmentRequest, service_id: int) -> dict[str, Any]:
    """POST /packages: the draft package (Kwarcek PackageRequest::addPackage). ``user_reference_number``
    carries our reference, which is how a retry finds the draft again."""
    if not request.parcels:
        raise PermanentError(f"Furgonetka shipment {request.reference}: no parcels")
    sender = address(request.sender, request.options.get("sender_point"))
    receiver = address(request.receiver, request.pickup_point.id if request.pickup_point else None)
    values = _declared_values(request.insurance, len(request.parcels))
    description = request.content or ""
    services: dict[str, Any] = {}
    if request.cod is not None:
        if request.cod.currency != "PLN":
            raise PermanentError(f"Furgonetka shipment {request.reference}: cash on delivery in "
                                 f"{request.cod.currency} (Furgonetka collects PLN only)")
        services["cod"] = {  # Kwarcek src/Entity/Cod.php
            "amount": money(request.cod.amount),
            "express": False,
            "iban": request.cod.bank_account.replace(" ", ""),
            "name": request.sender.company or request.sender.name,
        }
    return {
        "pickup": sender,  # where the courier collects it
        "sender": sender,
        "receiver": receiver,
        "service_id": service_id,
        "type": request.options.get("package_type", "package"),  # package | dox | pallet
        "user_reference_number": request.reference,
        "parcels": [_parcel(p, values[i], description, i) for i, p in enumerate(request.parcels)],
        "additional_services": services,
    }


def label_settings(fmt: LabelFormat, size: LabelSize) -> dict[str, str]:
    """The label's page and file format (Kwarcek src/Entity/Label.php: a4/a6, pdf/zpl/epl)."""
    return {"page_format": LABEL_PAGE_FORMATS[size], "file_format": LABEL_FILE_FORMATS[fmt]}


def order_command_body(package_id: str, fmt: LabelFormat, size: LabelSize) -> dict[str, Any]:
    """PUT /order-commands/{uuid} (Kwarcek OrderRequest::orderShipments, commerce-link orderCommand)."""
    return {"packages": [{"id": _id_value(package_id)}], "label": label_settings(fmt, size)}


def cancel_command_body(package_id: str) -> dict[str, Any]:
    """PUT /cancel-command/{uuid} (Kwarcek CancelRequest::cancelPackages)."""
    return {"packages": [{"id": _id_value(package_id)}]}


def proposals_body(package_ids: Sequence[str], day: date, days_ahead: int = 1) -> dict[str, Any]:
    """POST /packages/pickup-date-proposals (commerce-link PickupDateProposalsRequest)."""
    return {"packages": [{"id": _id_value(p)} for p in package_ids], "ready_date": day.isoformat(),
            "days_ahead": days_ahead}


def pickup_command_body(package_ids: Sequence[str], window: PickupWindow, hash_: str) -> dict[str, Any]:
    """PUT /pickup-commands/{uuid} (commerce-link PickupCommandRequest: date, min_time, max_time, hash)."""
    return {"packages": [{"id": _id_value(p)} for p in package_ids],
            "pickup_date": {"date": window.day.isoformat(), "min_time": window.start.strftime("%H:%M"),
                            "max_time": window.end.strftime("%H:%M"), "hash": hash_}}


def _id_value(package_id: str) -> int | str:
    """Package ids are JSON numbers at Furgonetka (commerce-link's sandbox captures)."""
    return int(package_id) if package_id.isdigit() else package_id


# --- answers ----------------------------------------------------------------------------------


def need(obj: Any, key: str, call: str, what: str | None = None) -> Any:
    """``obj[key]``, or a RetryableError naming the call and the field when the answer lacks it."""
    if not isinstance(obj, Mapping):
        raise RetryableError(f"Furgonetka {call}: expected a JSON object{f' for {what}' if what else ''}, "
                             f"got {type(obj).__name__}")
    value = obj.get(key)
    if value is None or value == "":
        raise RetryableError(f"Furgonetka {call}: the answer has no {what + '.' if what else ''}{key}")
    return value


def items(obj: Any, key: str, call: str) -> list[Any]:
    """``obj[key]`` as a list ([] when absent or null), or RetryableError when it is something else."""
    if not isinstance(obj, Mapping):
        raise RetryableError(f"Furgonetka {call}: expected a JSON object, got {type(obj).__name__}")
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RetryableError(f"Furgonetka {call}: {key} is not a list")
    return value


def service_ids(answer: Any, call: str) -> list[tuple[str, int]]:
    """GET /account/services: (carrier, service_id) per service of the account (commerce-link
    GetServiceProvidersResponse: services[].id, .service, .name)."""
    out = []
    for i, entry in enumerate(items(answer, "services", call)):
        service = need(entry, "service", call, f"services[{i}]")
        service_id = need(entry, "id", call, f"services[{i}]")
        try:
            out.append((str(service).lower(), int(service_id)))
        except (TypeError, ValueError):
            raise RetryableError(f"Furgonetka {call}: services[{i}].id {service_id!r} is not a number") from None
    return out


def package_id(package: Any, call: str) -> str:
    return str(need(package, "package_id", call))


def tracking_numbers(package: Any, call: str) -> list[str]:
    """The carrier's numbers of the package's parcels (parcels[].package_no), in the parcels' order;
    empty while the package is a draft."""
    numbers = []
    for i, parcel in enumerate(items(package, "parcels", call)):
        if not isinstance(parcel, Mapping):
            raise RetryableError(f"Furgonetka {call}: parcels[{i}] is not an object")
        number = parcel.get("package_no")
        if number:
            numbers.append(str(number))
    return numbers


def booking(reference: str, package: Any, order_uuid: str, call: str) -> Booking:
    """The Booking of an ordered package: one BookedParcel per parcel, the delivering carrier as operator."""
    pid = package_id(package, call)
    parcels = items(package, "parcels", call)
    numbers = tracking_numbers(package, call)
    if not parcels or len(numbers) != len(parcels):
        raise RetryableError(f"Furgonetka {call}: package {pid} is ordered but parcels[].package_no is not "
                             f"assigned yet ({len(numbers)} of {len(parcels)})")
    service = str(need(package, "service", call)).lower()
    return Booking(
        reference=reference,
        external_id=pid,
        parcels=[BookedParcel(tracking_number=n, external_id=pid) for n in numbers],
        operator=OPERATORS.get(service, "other"),
        handles={"package_id": pid, "order_command": order_uuid, "service": service},
    )


def state(package: Any) -> str | None:
    value = package.get("state") if isinstance(package, Mapping) else None
    return str(value) if value else None


def command_status(answer: Any, call: str) -> str:
    return str(need(answer, "status", call))


def command_errors(answer: Any) -> list[str]:
    """The messages of a command's (or an error body's) ``errors`` [{path, message}]."""
    if not isinstance(answer, Mapping):
        return []
    out = []
    for error in answer.get("errors") or []:
        if isinstance(error, Mapping) and error.get("message"):
            path = error.get("path")
            out.append(f"{error['message']}" + (f" ({path})" if path else ""))
    if not out and answer.get("message"):
        out.append(str(answer["message"]))
    return out


def ordered_package_ids(answer: Any, call: str) -> list[str]:
    return [str(p) for p in items(answer, "successfully_ordered_packages", call)]


def cancel_result(answer: Any, package: str, call: str) -> bool | None:
    """Whether the cancel command cancelled ``package`` (cancel_command_details[].cancel_success);
    None when the details do not name it."""
    for i, detail in enumerate(items(answer, "cancel_command_details", call)):
        if isinstance(detail, Mapping) and str(detail.get("package_id")) == package:
            success = detail.get("cancel_success")
            if not isinstance(success, bool):
                raise RetryableError(f"Furgonetka {call}: cancel_command_details[{i}].cancel_success is not "
                                     "true or false")
            return success
    return None


def _clock(value: Any, call: str, field: str) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise RetryableError(f"Furgonetka {call}: {field} {value!r} is not a time (HH:MM)") from None


def windows(answer: Any, day: date | None, call: str) -> list[PickupWindow]:
    """The windows in which a courier can collect every package (one courier comes for all of them, as
    commerce-link's pickupWindows intersects them by hash), on ``day`` when given, in time order."""
    common: dict[str, PickupWindow] | None = None
    for i, entry in enumerate(items(answer, "packages", call)):
        offered: dict[str, PickupWindow] = {}
        for j, proposal in enumerate(items(entry, "proposals", call)):
            where = f"packages[{i}].proposals[{j}]"
            if not isinstance(proposal, Mapping) or proposal.get("available") is not True:
                continue
            hash_ = str(need(proposal, "hash", call, where))
            try:
                when = date.fromisoformat(str(need(proposal, "date", call, where)))
            except ValueError:
                raise RetryableError(f"Furgonetka {call}: {where}.date is not a date") from None
            if day is not None and when != day:
                continue
            offered[hash_] = PickupWindow(
                day=when, start=_clock(need(proposal, "min_time", call, where), call, f"{where}.min_time"),
                end=_clock(need(proposal, "max_time", call, where), call, f"{where}.max_time"), proposal_id=hash_)
        common = offered if common is None else {h: w for h, w in common.items() if h in offered}
    return sorted((common or {}).values(), key=lambda w: (w.day, w.start, w.end))


def booked_pickup(reference: str, window: PickupWindow, answer: Any, command: str, call: str) -> BookedPickup:
    """The pickup Furgonetka booked (pickup_details[].pickup_id, one per carrier's pickup)."""
    details = items(answer, "pickup_details", call)
    if not details:
        raise PermanentError(f"Furgonetka {call}: the pickup command ended without a pickup: "
                             + ("; ".join(command_errors(answer)) or "no reason given"))
    ids = [str(need(d, "pickup_id", call, f"pickup_details[{i}]")) for i, d in enumerate(details)]
    packages = [str(p) for d in details for p in (d.get("package_ids") or [])]
    return BookedPickup(reference=reference, external_id=ids[0], window=window,
                        handles={"pickup_command": command, "pickup_ids": ",".join(ids),
                                 "package_ids": ",".join(packages)})


def parse_datetime(value: Any, call: str, field: str) -> datetime:
    """Furgonetka's time (ISO 8601 with an offset, or Warsaw local time without one) as UTC."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise RetryableError(f"Furgonetka {call}: {field} {value!r} is not a date and time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=WARSAW)
    return moment.astimezone(UTC)


def status_of(state_code: str) -> TrackingStatus:
    return STATUSES.get(state_code, UNKNOWN_STATE_STATUS)


def tracking_events(numbers: Sequence[str], answer: Any, call: str) -> list[TrackingEvent]:
    """GET /packages/{id}/tracking: tracking[] of {state, status, datetime} (commerce-link
    TrackingPackageResponse); the package's events hold for each of its parcels' numbers."""
    events = []
    for i, entry in enumerate(items(answer, "tracking", call)):
        where = f"tracking[{i}]"
        code = str(need(entry, "state", call, where))
        occurred = parse_datetime(need(entry, "datetime", call, where), call, f"{where}.datetime")
        description = entry.get("status") if isinstance(entry.get("status"), str) else None
        events.extend(TrackingEvent(tracking_number=n, status=status_of(code), occurred_at=occurred, code=code,
                                    description=description) for n in numbers)
    return sorted(events, key=lambda e: e.occurred_at)
