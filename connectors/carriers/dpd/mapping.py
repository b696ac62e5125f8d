"""Pure functions between the hub's carrier types and DPDServices payloads (no I/O).

Requests are built as the plain dicts zeep takes for the vendored WSDL's elements; answers are read from
``zeep.helpers.serialize_object(..., dict)`` of zeep's result, so these functions are tested without zeep.
Field names, statuses and limits come from the vendored XSD (connectors/carriers/dpd/wsdl) and DPD's client
documentation v2.87 (shipped with that WSDL, see shared/specs/SOURCES.md); the section is named where it
matters.

Tracking: DPD's events live in the separate InfoServices WSDL (getEventsForWaybillV1), which is not vendored,
so this module maps no DPD event codes onto the hub's TrackingStatus (see carrier.DpdCarrier.track).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal
from zoneinfo import ZoneInfo

from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.carrier import (
    BookedParcel,
    Booking,
    LabelFormat,
    LabelSize,
    PickupRequest,
    PickupWindow,
    ShipmentRequest,
)
from hub.kernel.types import Address

OPERATOR = "dpd"
LOCAL_ZONE = ZoneInfo("Europe/Warsaw")  # DPD's pickup dates and times are Polish local time
SessionType = Literal["DOMESTIC", "INTERNATIONAL"]

# service code (mappings/delivery.toml) -> what goes into packages.services besides cod/declaredValue
# (documentation v2.87, 1.2.5.2 "Domestic services": guarantee types TIME0930, TIME1200, SATURDAY; dpdPickup)
SERVICES: dict[str, dict[str, Any]] = {
    "classic": {},
    "dpd-pickup": {},  # dpdPickup.pudo = the request's pickup point, filled in by package()
    "guarantee-0930": {"guarantee": {"type": "TIME0930"}},
    "guarantee-1200": {"guarantee": {"type": "TIME1200"}},
    "guarantee-saturday": {"guarantee": {"type": "SATURDAY"}},
}
# the XSD's serviceCurrencyEnum (less UNKNOWN)
CURRENCIES = frozenset({"PLN", "EUR", "USD", "CHF", "SEK", "NOK", "CZK", "RON", "HUF", "HRK", "BGN", "DKK", "GBP",
                        "RSD", "RUB", "TRY"})
# OpenUMLF field sizes (documentation v2.87, 1.5 "Appendix 1", "Field size"; Error codes.xlsx agrees:
# e.g. ERROR_RECEIVER_NAME_MAX_SIZE_EXCEEDED "(100)", ERROR_SENDER_CITY_MAX_SIZE_EXCEEDED "(50)")
ADDRESS_LIMITS = {"company": 100, "name": 100, "address": 100, "city": 50, "postalCode": 10, "phone": 100,
                  "email": 100}
# the label call finds packages and parcels by reference with at most 50 characters (generateSpedLabelsV1,
# "Validation", Package/Parcel Reference): a longer reference could be booked but never found again
REFERENCE_MAX = 50
CONTENT_MAX = 300  # parcels.content: "It is possible to enter 300 characters, but only 50 can be placed on the label"
CUSTOMER_DATA_MAX = 100  # parcels.customerData1 (generatePackagesNumbersV1, "Validation", For Parcels field)
REF_MAX = 100  # ref1..ref3
# "the reference field can be used only once" (1.4 Good practice): a second generation with our reference
# is answered with one of these (V1 enum names, V2+ string names in generatePackagesNumbersV2 "Query results")
DUPLICATE_STATUSES = frozenset({"DUPLICATED_PACKAGE_REFERENCE", "DUPLICATED_PARCEL_REFERENCE",
                                "DUPLICATED_PACKAGE_SEARCH_KEY", "DUPLICATED_PARCEL_SEARCH_KEY"})
# statuses that describe DPD's own trouble, not our data: worth a later attempt
TRANSIENT_STATUSES = frozenset({"UNKNOWN_ERROR", "DB_ERROR", "SERVICE_NOT_AVAILABLE", "UNKNOWN_RDB_ERROR"})
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_CENT = Decimal("0.01")


# --- small helpers ---------------------------------------------------------------------------------------

def postal_code(value: str) -> str:
    """Postal codes go without the dash ("only characters, excluding e.g. '-'": findPostalCodeV1,
    getCourierOrderAvailabilityV1): 02-274 -> 02274."""
    return re.sub(r"[^0-9A-Za-z]", "", value).upper()


def amount(value: Decimal, *, what: str) -> str:
    """Money as DPD's string with two decimals ("field format 0.00": Appendix 1, COD/DeclaredValue)."""
    try:
        quantized = Decimal(value).quantize(_CENT, rounding=ROUND_HALF_UP)
    except (InvalidOperation, TypeError):
        raise PermanentError(f"DPD {what}: {value!r} is not an amount") from None
    if quantized <= 0:
        raise PermanentError(f"DPD {what}: the amount must be positive, got {value}")
    return f"{quantized:f}"


def weight(value: Decimal) -> Decimal:
    """Kilograms; the wire is xs:double, sent from a Decimal so the text is exact (no float digits)."""
    kg = Decimal(value)
    if kg < Decimal("0.01"):  # ERROR_INCORRECT_WEIGHT 1011 "Minimum parcel weight 0.01 kg" (Error codes.xlsx)
        raise PermanentError(f"DPD parcel weight {value} kg is below DPD's minimum of 0.01 kg")
    return kg.normalize() if kg == kg.to_integral() else kg


def session_type(country: str) -> SessionType:
    """A session is DOMESTIC or INTERNATIONAL (sessionTypeDSPEnumV1) by where the parcel goes."""
    return "DOMESTIC" if country.upper() == "PL" else "INTERNATIONAL"


def _check(value: str | None, limit: int, what: str) -> str | None:
    if value is not None and len(value) > limit:
        raise PermanentError(f"DPD {what} is {len(value)} characters long, DPD takes at most {limit}: {value!r}")
    return value


def party(address: Address, *, who: str, fid: int | None = None) -> dict[str, Any]:
    """packageAddressOpenUMLFeV1 for the sender or the receiver."""
    out: dict[str, Any] = {
        "address": address.street, "city": address.city, "company": address.company,
        "countryCode": address.country.upper(), "email": address.email, "fid": fid, "name": address.name,
        "phone": address.phone, "postalCode": postal_code(address.postal_code),
    }
    for key, limit in ADDRESS_LIMITS.items():
        _check(out[key], limit, f"{who}.{key}")
    return {key: value for key, value in out.items() if value not in (None, "")}


# --- generatePackagesNumbersV4 ---------------------------------------------------------------------------

def parcel_reference(request: ShipmentRequest, index: int) -> str:
    """Our parcel's reference: the one the hub gave it, else the shipment's reference + "-1", "-2"..."""
    parcel = request.parcels[index]
    return parcel.reference or f"{request.reference}-{index + 1}"


def check_references(request: ShipmentRequest) -> None:
    """Every reference must be findable again by the label call (see REFERENCE_MAX) and unique."""
    if not request.reference.strip():
        raise PermanentError("DPD booking: the shipment reference is empty")
    _check(request.reference, REFERENCE_MAX, "package reference")
    refs = [parcel_reference(request, i) for i in range(len(request.parcels))]
    for ref in refs:
        _check(ref, REFERENCE_MAX, "parcel reference")
    if len(set(refs)) != len(refs) or request.reference in refs:
        raise PermanentError(f"DPD booking {request.reference}: parcel references must be unique and differ "
                             f"from the shipment's ({', '.join(refs)})")


def package(request: ShipmentRequest, *, sender_fid: int, payer_type: str, master_fid: int) -> dict[str, Any]:
    """One packageOpenUMLFeV3: our reference is the package's unique ``reference`` (DPD's search key) and
    ``ref1`` (printed on the label); each parcel carries its own reference and the shipment's in
    ``customerData1``."""
    if request.service not in SERVICES:
        raise PermanentError(f"DPD booking {request.reference}: unknown service {request.service!r} "
                             f"(known: {', '.join(SERVICES)})")
    if not request.parcels:
        raise PermanentError(f"DPD booking {request.reference}: no parcels")
    check_references(request)
    services: dict[str, Any] = dict(SERVICES[request.service])
    if request.service == "dpd-pickup":
        if request.pickup_point is None or not request.pickup_point.id:
            raise PermanentError(f"DPD booking {request.reference}: service dpd-pickup needs the buyer's "
                                 "DPD Pickup point (pickup_point)")
        services["dpdPickup"] = {"pudo": request.pickup_point.id}
    if request.cod is not None:
        currency = request.cod.currency.upper()
        if currency not in CURRENCIES:
            raise PermanentError(f"DPD booking {request.reference}: COD currency {currency} is not one DPD takes")
        # the bank account the money goes to is part of the DPD contract: openUMLFeV3 has no field for it
        services["cod"] = {"amount": amount(request.cod.amount, what=f"booking {request.reference} COD"),
                           "currency": currency}
    if request.insurance is not None:
        currency = request.currency.upper()
        if currency not in CURRENCIES:
            raise PermanentError(f"DPD booking {request.reference}: currency {currency} is not one DPD takes")
        services["declaredValue"] = {
            "amount": amount(request.insurance, what=f"booking {request.reference} declared value"),
            "currency": currency}
    parcels = []
    for index, parcel in enumerate(request.parcels):
        item: dict[str, Any] = {
            "reference": parcel_reference(request, index),
            "customerData1": _check(request.reference, CUSTOMER_DATA_MAX, "parcel customerData1"),
            "weight": weight(parcel.weight_kg),
            "sizeX": parcel.length_cm, "sizeY": parcel.width_cm, "sizeZ": parcel.height_cm,
            "content": request.content[:CONTENT_MAX] if request.content else None,
        }
        parcels.append({key: value for key, value in item.items() if value is not None})
    out: dict[str, Any] = {
        "parcels": parcels,
        "payerType": payer_type,
        "receiver": party(request.receiver, who="receiver"),
        "ref1": _check(request.reference, REF_MAX, "ref1"),
        "ref2": _check(request.order_external_id, REF_MAX, "ref2"),
        "reference": request.reference,
        "sender": party(request.sender, who="sender", fid=sender_fid),
        "services": services or None,
        "thirdPartyFID": master_fid if payer_type == "THIRD_PARTY" else None,
    }
    return {key: value for key, value in out.items() if value is not None}


def generation_request(request: ShipmentRequest, *, sender_fid: int, payer_type: str,
                       master_fid: int) -> dict[str, Any]:
    """The body of generatePackagesNumbersV4 (without authDataV1): one package, ALL_OR_NOTHING, "PL"
    (the only langCode DPD accepts: UNSUPPORTED_LANG_CODE otherwise)."""
    return {"openUMLFeV3": {"packages": [package(request, sender_fid=sender_fid, payer_type=payer_type,
                                                 master_fid=master_fid)]},
            "pkgNumsGenerationPolicyV1": "ALL_OR_NOTHING", "langCode": "PL"}


@dataclass(frozen=True)
class Duplicate:
    """DPD already has a package under our reference: an earlier call booked it."""

    status: str


def _items(value: Any, key: str) -> list[dict[str, Any]]:
    """``{"Package": [...]}``-style wrappers and nillable lists, as serialize_object gives them."""
    if value is None:
        return []
    inner = value.get(key) if isinstance(value, Mapping) else value
    if inner is None:
        return []
    if isinstance(inner, Mapping):
        return [dict(inner)]
    return [dict(item) for item in inner if isinstance(item, Mapping)]


def _validation(details: Any) -> list[str]:
    out = []
    for info in _items(details, "ValidationInfo"):
        code = info.get("ErrorCode") or info.get("ErrorId")
        fields = f" ({info['FieldNames']})" if info.get("FieldNames") else ""
        text = f": {info['Info']}" if info.get("Info") else ""
        out.append(f"{code}{fields}{text}")
    return out


def read_generation(answer: Mapping[str, Any] | None, request: ShipmentRequest,
                    handles: Mapping[str, str]) -> Booking | Duplicate:
    """generatePackagesNumbersV4's answer: the Booking, or Duplicate when our reference is taken already.

    Raises PermanentError with DPD's reasons for a refusal of our data, RetryableError for DPD's own
    trouble (DB_ERROR, ...) and for an answer that says OK but lacks a field: under ALL_OR_NOTHING nothing
    was booked in the first case, and in the second the next attempt finds the package by its reference."""
    op = f"DPD generatePackagesNumbersV4 for {request.reference}"
    if not answer:
        raise RetryableError(f"{op}: the answer has no return element; the next attempt finds the package by "
                             "its reference if DPD created it")
    packages = _items(answer.get("Packages"), "Package")
    statuses = [str(answer.get("Status") or "")]
    for pkg in packages:
        statuses.append(str(pkg.get("Status") or ""))
        statuses.extend(str(p.get("Status") or "") for p in _items(pkg.get("Parcels"), "Parcel"))
    duplicate = next((s for s in statuses if s in DUPLICATE_STATUSES), None)
    if duplicate:
        return Duplicate(duplicate)
    if answer.get("Status") != "OK" or any(p.get("Status") != "OK" for p in packages):
        reasons = [r for pkg in packages for r in _validation(pkg.get("ValidationDetails"))]
        reasons += [r for pkg in packages for parcel in _items(pkg.get("Parcels"), "Parcel")
                    for r in _validation(parcel.get("ValidationDetails"))]
        bad = sorted({s for s in statuses if s and s != "OK"})
        text = f"{op}: DPD answered {', '.join(bad) or 'no status'}" + (f": {'; '.join(reasons)}" if reasons else "")
        if bad and set(bad) <= TRANSIENT_STATUSES:
            raise RetryableError(text)
        raise PermanentError(text)
    if len(packages) != 1:
        raise RetryableError(f"{op}: the answer holds {len(packages)} packages, expected 1; the next attempt "
                             "finds the package by its reference")
    pkg = packages[0]
    package_id = pkg.get("PackageId")
    if package_id is None:
        raise RetryableError(f"{op}: the answer lacks Packages.Package.PackageId; the next attempt finds the "
                             "package by its reference")
    parcels = _parcels_in_order(_items(pkg.get("Parcels"), "Parcel"), request, op, ref_key="Reference",
                                waybill_key="Waybill", id_key="ParcelId")
    out = dict(handles)
    out["package_id"] = str(package_id)
    return Booking(reference=request.reference, external_id=str(package_id), parcels=parcels, operator=OPERATOR,
                   handles=out)


def _parcels_in_order(items: Sequence[Mapping[str, Any]], request: ShipmentRequest, op: str, *, ref_key: str,
                      waybill_key: str, id_key: str) -> list[BookedParcel]:
    """The answer's parcels in the request's order: by our parcel reference where DPD echoes it, else by
    position (DPD answers them in the order sent)."""
    if len(items) != len(request.parcels):
        raise RetryableError(f"{op}: the answer holds {len(items)} parcels, the request {len(request.parcels)}; "
                             "the next attempt finds the package by its reference")
    by_ref = {str(item.get(ref_key)): item for item in items if item.get(ref_key)}
    out = []
    for index in range(len(request.parcels)):
        item = by_ref.get(parcel_reference(request, index), items[index])
        waybill = item.get(waybill_key)
        if not waybill:
            raise RetryableError(f"{op}: parcel {index + 1} has no {waybill_key}; the next attempt finds the "
                                 "package by its reference")
        parcel_id = item.get(id_key)
        out.append(BookedParcel(tracking_number=str(waybill),
                                external_id=None if parcel_id is None else str(parcel_id)))
    return out


# --- generateSpedLabelsV4 / generateProtocolV2 -----------------------------------------------------------

def page_format(fmt: LabelFormat, size: LabelSize) -> tuple[str, str]:
    """(outputDocFormatV1, outputDocPageFormatV1): A4 sheets or the label printer's A6; "to obtain ZPL or
    EPL format outputDocPageFormatV1 = LBL_PRINTER must also be set up" (generateSpedLabelsV3, Note 1)."""
    if fmt == "zpl":
        if size == "A4":
            raise PermanentError("DPD prints ZPL only for label printers (LBL_PRINTER, A6): ask for size A6")
        return "ZPL", "LBL_PRINTER"
    return "PDF", ("A4" if size == "A4" else "LBL_PRINTER")


def services_params(session: SessionType, *, package_ids: Sequence[str] = (), reference: str | None = None,
                    pickup_fid: int | None = None) -> dict[str, Any]:
    """dpdServicesParamsV1 naming the packages by DPD's packageId, or one package by our reference."""
    if reference is not None:
        packages: list[dict[str, Any]] = [{"reference": reference}]
    else:
        packages = [{"packageId": int(pid)} for pid in package_ids]
    out: dict[str, Any] = {"policy": "STOP_ON_FIRST_ERROR",
                           "session": {"packages": packages, "sessionType": session}}
    if pickup_fid is not None:
        out["pickupAddress"] = {"fid": pickup_fid}
    return out


@dataclass(frozen=True)
class Document:
    content: bytes
    document_id: str | None
    packages: list[dict[str, Any]]


def read_document(answer: Mapping[str, Any] | None, op: str, *, not_ready: frozenset[str] = frozenset()) -> Document:
    """documentGenerationResponseV1: the document and the session's packages. A session status in
    ``not_ready`` (e.g. NOT_FOUND right after the numbers were generated) is a RetryableError, any other
    status but OK a PermanentError with DPD's description."""
    if not answer:
        raise RetryableError(f"{op}: the answer has no return element")
    session = answer.get("session") or {}
    info = session.get("statusInfo") or {}
    status = info.get("status")
    packages = [dict(p) for p in session.get("packages") or [] if isinstance(p, Mapping)]
    problems = [f"package {p.get('packageId') or p.get('reference')}: {p['statusInfo'].get('status')}"
                + (f" ({p['statusInfo']['description']})" if p["statusInfo"].get("description") else "")
                for p in packages if isinstance(p.get("statusInfo"), Mapping)
                and p["statusInfo"].get("status") not in (None, "OK")]
    if status is not None and status != "OK":
        text = f"{op}: DPD answered {status}" + (f" ({info['description']})" if info.get("description") else "")
        if problems:
            text += f": {'; '.join(problems)}"
        if status in not_ready or status in TRANSIENT_STATUSES:
            raise RetryableError(text)
        raise PermanentError(text)
    content = answer.get("documentData")
    if not content:
        raise RetryableError(f"{op}: the answer has no documentData yet")
    return Document(bytes(content), None if answer.get("documentId") is None else str(answer["documentId"]),
                    packages)


def check_document(content: bytes, fmt: LabelFormat, op: str) -> bytes:
    """A PDF starts with %PDF-, a ZPL label with ^XA: anything else is not what was asked for."""
    head = content.lstrip()[:8]
    if fmt == "pdf" and not head.startswith(b"%PDF-"):
        raise PermanentError(f"{op}: documentData is not a PDF (starts with {head!r})")
    if fmt == "zpl" and not head.startswith(b"^XA"):
        raise PermanentError(f"{op}: documentData is not ZPL (starts with {head!r})")
    return content


def read_recovered(document: Document, request: ShipmentRequest, handles: Mapping[str, str]) -> Booking:
    """The Booking from the label call that found our package by reference (after DUPLICATED_*_REFERENCE)."""
    op = f"DPD generateSpedLabelsV4 by reference {request.reference}"
    matching = [p for p in document.packages if p.get("reference") in (None, request.reference)]
    if len(matching) != 1 or matching[0].get("packageId") is None:
        raise PermanentError(f"{op}: DPD says the reference is taken but the label call does not name one "
                             f"package for it ({len(matching)} found): check the package in DPD's panel")
    pkg = matching[0]
    parcels = [dict(p) for p in pkg.get("parcels") or [] if isinstance(p, Mapping)]
    try:
        booked = _parcels_in_order(parcels, request, op, ref_key="reference", waybill_key="waybill",
                                   id_key="parcelId")
    except RetryableError as exc:  # here a mismatch will not go away by calling again
        raise PermanentError(f"{exc} (the package under this reference differs from the request: check it in "
                             "DPD's panel)") from None
    out = dict(handles)
    out["package_id"] = str(pkg["packageId"])
    return Booking(reference=request.reference, external_id=str(pkg["packageId"]), parcels=booked,
                   operator=OPERATOR, handles=out)


# --- getCourierOrderAvailabilityV1 -----------------------------------------------------------------------

def read_windows(answer: Mapping[str, Any] | None, day: date, now: datetime) -> list[PickupWindow]:
    """The ranges ("14:00-16:00", local time) a courier can come on ``day``; ``offset`` is the "minimum
    advance time (in minutes), when the courier needs to be booked" (getCourierOrderAvailabilityV1), taken
    here against the window's start. Empty ``<ranges/>`` (DPD's own example has one) are skipped."""
    op = "DPD getCourierOrderAvailabilityV1"
    if not answer:
        raise RetryableError(f"{op}: the answer has no return element")
    if answer.get("status") != "OK":
        raise PermanentError(f"{op}: DPD answered status {answer.get('status')!r} for the pickup postal code")
    local_now = now.astimezone(LOCAL_ZONE)
    if day < local_now.date():
        return []
    out: list[PickupWindow] = []
    for item in answer.get("ranges") or []:
        if not isinstance(item, Mapping) or not item.get("range"):
            continue
        match = _RANGE.match(str(item["range"]))
        if match is None:
            raise PermanentError(f"{op}: ranges.range {item['range']!r} is not hh:mm-hh:mm")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        try:
            start, end = time(h1, m1), time(h2, m2)
        except ValueError:
            raise PermanentError(f"{op}: ranges.range {item['range']!r} is not a time of day") from None
        if end <= start:
            raise PermanentError(f"{op}: ranges.range {item['range']!r} ends before it starts")
        offset = item.get("offset") or 0
        starts_at = datetime.combine(day, start, tzinfo=LOCAL_ZONE)
        if starts_at - timedelta(minutes=int(offset)) < local_now:
            continue
        window = PickupWindow(day=day, start=start, end=end)
        if window not in out:
            out.append(window)
    return sorted(out, key=lambda w: (w.start, w.end))


# --- packagesPickupCallV4 --------------------------------------------------------------------------------

def pickup_insert(request: PickupRequest, *, payer_fid: int, payer_name: str | None,
                  customer_name: str | None) -> dict[str, Any]:
    """dpdPickupParamsV3 for INSERT (documentation v2.87, packagesPickupCallV2 "Validation": payerNumber,
    payerName, senderName, senderAddress, senderCity, senderPostalCode, senderPhone and the packagesParams
    flags and counts are required)."""
    op = f"DPD packagesPickupCallV4 INSERT for pickup {request.reference}"
    address = request.address
    if not address.phone:
        raise PermanentError(f"{op}: the pickup address has no phone (DPD requires senderPhone)")
    if not request.bookings:
        raise PermanentError(f"{op}: no shipments to collect")
    kinds = {b.handles.get("session_type", "DOMESTIC") for b in request.bookings}
    if len(kinds) != 1:
        raise PermanentError(f"{op}: domestic and international parcels need separate courier orders")
    if request.parcels < 1:
        raise PermanentError(f"{op}: the courier must collect at least one parcel")
    who = address.company or address.name
    details = {
        "packagesParams": {"dox": False, "doxCount": 0, "pallet": False, "palletsCount": 0,
                           "parcelsCount": request.parcels, "parcelsWeight": weight(request.weight_kg),
                           "standardParcel": True},
        "pickupCustomer": {"customerFullName": _check(customer_name or address.name, 100, "customerFullName"),
                           "customerName": _check(customer_name or address.name, 100, "customerName"),
                           "customerPhone": _check(address.phone, 20, "customerPhone")},
        "pickupPayer": {"payerName": _check(payer_name or who, 100, "payerName"), "payerNumber": payer_fid},
        "pickupSender": {"senderAddress": _check(address.street, 100, "senderAddress"),
                         "senderCity": _check(address.city, 50, "senderCity"),
                         "senderFullName": _check(address.name, 100, "senderFullName"),
                         "senderName": _check(who, 100, "senderName"),
                         "senderPhone": _check(address.phone, 50, "senderPhone"),
                         "senderPostalCode": _check(postal_code(address.postal_code), 10, "senderPostalCode")},
    }
    return {"operationType": "INSERT", "orderType": kinds.pop(), "pickupCallSimplifiedDetails": details,
            "pickupDate": request.window.day.isoformat(), "pickupTimeFrom": request.window.start.strftime("%H:%M"),
            "pickupTimeTo": request.window.end.strftime("%H:%M"), "waybillsReady": True}


def pickup_cancel(order_number: str, check_sum: int) -> dict[str, Any]:
    """dpdPickupParamsV3 for CANCEL: "order number and checksum" only (packagesPickupCallV3, CANCEL)."""
    return {"checkSum": check_sum, "operationType": "CANCEL", "orderNumber": order_number}


@dataclass(frozen=True)
class PickupAnswer:
    status: str
    order_number: str | None
    check_sum: int | None
    errors: list[str]


def read_pickup(answer: Mapping[str, Any] | None, op: str) -> PickupAnswer:
    """packagesPickupCallResponseV3: status, orderNumber and checkSum (INSERT/UPDATE only), errorDetails."""
    if not answer:
        raise RetryableError(f"{op}: the answer has no return element")
    info = answer.get("statusInfo") or {}
    errors = []
    for err in info.get("errorDetails") or []:
        if isinstance(err, Mapping):
            fields = f" ({err['fields']})" if err.get("fields") else ""
            errors.append(f"{err.get('code')}{fields}: {err.get('description') or ''}".rstrip(": "))
    check_sum = answer.get("checkSum")
    return PickupAnswer(status=str(info.get("status") or ""), order_number=answer.get("orderNumber"),
                        check_sum=None if check_sum is None else int(check_sum), errors=errors)
