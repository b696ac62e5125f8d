"""Pure functions between the port's types and Elektroniczny Nadawca's payloads (no I/O).

Everything here follows the vendored WSDL (connectors/carriers/poczta_polska/wsdl/en.wsdl, its inline
schema): ``masaType`` is grams ("masa przesyłki podana w gramach"), ``wartoscType`` and
``kwotaPobraniaType`` are grosze ("w groszach"), ``guidType`` is 32 characters, ``adresType`` carries
the address as attributes with the lengths checked below. Payloads are plain dicts that the client
turns into zeep objects of the named type; answers arrive as plain dicts (zeep's serialize_object).

Tracking codes: EN's own answers carry no tracking events (the Sledzenie service that does is a
separate WSDL that is not vendored), so there is no vendor-code -> TrackingStatus table here.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, time
from decimal import Decimal
from typing import Any

from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.money import to_grosz
from hub.kernel.ports.carrier import (
    BookedParcel,
    Booking,
    Parcel,
    PickupRequest,
    PickupWindow,
    ShipmentRequest,
)
from hub.kernel.types import Address

from .options import SERVICE_TYPES

CARRIER = "Poczta Polska (EN)"
OPERATOR = "poczta-polska"
MAX_MASA = 9_999_999  # masaType maxInclusive, grams
MAX_GROSZE = 9_999_999  # wartoscType / kwotaPobraniaType maxInclusive
POCZTEX_FORMATS = ("S", "M", "L", "XL", "2XL")  # formatPocztex2021Type
KATEGORIE = ("EKONOMICZNA", "PRIORYTETOWA")  # kategoriaType
GABARYTY = ("GABARYT_A", "GABARYT_B")  # gabarytType
OBSZARY = ("MIASTO", "KRAJ")  # obszarType
# the keys a delivery mapping may set in ShipmentRequest.options for this carrier
REQUEST_OPTIONS = ("idBufor", "format", "kategoria", "gabaryt", "obszar", "ostroznie")
# types with subPrzesylka (pocztex2021KurierType / pocztex2021NaDzisType): one shipment of several parcels
MULTI_PARCEL = {"pocztex2021KurierType": "subPocztex2021KurierType",
                "pocztex2021NaDzisType": "subPocztex2021NaDzisType"}
_STREET = re.compile(r"^(?P<ulica>.*?\S)\s+(?P<dom>\d+[A-Za-z]?(?:-\d+[A-Za-z]?)?)"
                     r"(?:\s*/\s*|\s+m\.?\s*|\s+lok\.?\s*)?(?P<lokal>(?<=[/m.k ])\w+)?$")


def guid_for(reference: str, parcel_no: int = 1) -> str:
    """Our EN guid of a parcel: 32 hex characters (guidType: length 32) derived from our reference, so
    a retry of ``book`` computes the same guid and finds what the first call added."""
    seed = f"hub:poczta-polska:{reference}" if parcel_no == 1 else f"hub:poczta-polska:{reference}#{parcel_no}"
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()[:32].upper()


def guids_for(reference: str, count: int) -> list[str]:
    return [guid_for(reference, n) for n in range(1, count + 1)]


def grams(weight_kg: Decimal, *, field: str = "masa") -> int:
    """masaType: whole grams, at least 1, rounded up (a label must not understate the weight)."""
    value = max(1, math.ceil(weight_kg * 1000))
    if weight_kg <= 0 or value > MAX_MASA:
        raise PermanentError(f"{CARRIER} addShipment: {field} {weight_kg} kg is outside 0.001..9999.999 kg")
    return value


def grosze(amount: Decimal, *, field: str) -> int:
    """wartoscType / kwotaPobraniaType: whole grosze (half a grosz and more rounds up)."""
    value = int(to_grosz(amount) * 100)
    if value < 0 or value > MAX_GROSZE:
        raise PermanentError(f"{CARRIER} addShipment: {field} {amount} PLN is outside 0..99999.99 PLN")
    return value


def split_street(street: str) -> tuple[str, str | None, str | None]:
    """(ulica, numerDomu, numerLokalu): adresType keeps them apart; "Długa 5/3", "Długa 5 m. 3"."""
    text = " ".join(street.split())
    match = _STREET.match(text)
    if match is None:
        return text, None, None
    return match.group("ulica"), match.group("dom"), match.group("lokal")


def _limited(value: str | None, limit: int, what: str) -> str | None:
    if value is None:
        return None
    text = " ".join(value.split())
    if not text:
        return None
    if len(text) > limit:
        raise PermanentError(f"{CARRIER} addShipment: {what} {text!r} is longer than {limit} characters")
    return text


def _phone(phone: str | None) -> str | None:
    """A Polish number as its 9 digits (+48 and blanks dropped); others as given (telefonType: <= 20)."""
    if not phone:
        return None
    digits = re.sub(r"[^\d+]", "", phone)
    if digits.startswith("+48") and len(digits) == 12:
        digits = digits[3:]
    elif digits.startswith("0048") and len(digits) == 13:
        digits = digits[4:]
    return _limited(digits, 20, "phone")


def adres(address: Address, *, role: str) -> dict[str, Any]:
    """adresType's attributes; Poland only (the services mapped here are domestic)."""
    if address.country.upper() != "PL":
        raise PermanentError(f"{CARRIER} addShipment: {role} country {address.country!r}: the services this "
                             "connector books are domestic (PL only)")
    digits = re.sub(r"\D", "", address.postal_code)
    if len(digits) != 5:
        raise PermanentError(f"{CARRIER} addShipment: {role} postal code {address.postal_code!r} is not NN-NNN")
    ulica, dom, lokal = split_street(address.street)
    name = _limited(address.name, 60, f"{role} name")
    company = _limited(address.company, 60, f"{role} company")
    phone = _phone(address.phone)
    email = address.email.strip() if address.email else None
    if email is not None and not 6 <= len(email) <= 50:  # emailType
        raise PermanentError(f"{CARRIER} addShipment: {role} e-mail {email!r} is not 6..50 characters")
    fields: dict[str, Any] = {
        "nazwa": company or name,
        "nazwa2": name if company else None,
        "ulica": _limited(ulica, 255, f"{role} street"),
        "numerDomu": _limited(dom, 11, f"{role} house number"),
        "numerLokalu": _limited(lokal, 11, f"{role} flat number"),
        "miejscowosc": _limited(address.city, 63, f"{role} city"),
        "kodPocztowy": digits,
        "telefon": phone,
        "email": email,
        # the receiver's number for EN's SMS notices (a buyer's phone is a mobile; a shop's may be a landline)
        "mobile": phone if role == "receiver" and phone and len(phone) == 9 else None,
    }
    if not fields["nazwa"] or not fields["miejscowosc"] or not fields["ulica"]:
        raise PermanentError(f"{CARRIER} addShipment: {role} address needs a name, a street and a city")
    return {key: value for key, value in fields.items() if value is not None}


def _nrb(iban: str) -> str:
    """pobranieType/@nrb: the 26-digit Polish account number (maxLength 26), IBAN's "PL" dropped."""
    text = re.sub(r"\s", "", iban).upper().removeprefix("PL")
    if not re.fullmatch(r"\d{26}", text):
        raise PermanentError(f"{CARRIER} addShipment: cod bank_account {iban!r} is not PL + 26 digits")
    return text


def _pobranie(request: ShipmentRequest) -> dict[str, Any] | None:
    if request.cod is None:
        return None
    if request.cod.currency.upper() != "PLN":
        raise PermanentError(f"{CARRIER} addShipment: cod currency {request.cod.currency}: EN collects PLN only")
    return {"sposobPobrania": "RACHUNEK_BANKOWY", "kwotaPobrania": grosze(request.cod.amount, field="cod amount"),
            "nrb": _nrb(request.cod.bank_account), "tytulem": request.reference[:54]}


def _wartosc(request: ShipmentRequest) -> int | None:
    if request.insurance is None:
        return None
    if request.currency.upper() != "PLN":
        raise PermanentError(f"{CARRIER} addShipment: declared value in {request.currency}: EN takes PLN only")
    return grosze(request.insurance, field="declared value")


def _choice(options: Mapping[str, str], key: str, allowed: Sequence[str], default: str | None) -> str | None:
    value = options.get(key, default)
    if value is not None and value not in allowed:
        raise PermanentError(f"{CARRIER} addShipment: option {key}={value!r} is not one of {', '.join(allowed)}")
    return value


def _flag(options: Mapping[str, str], key: str) -> bool | None:
    value = options.get(key)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise PermanentError(f"{CARRIER} addShipment: option {key}={value!r} is not true or false")
    return value == "true"


def przesylka(request: ShipmentRequest) -> tuple[str, dict[str, Any]]:
    """(the concrete przesylkaType subtype, its fields) for one shipment. Parcel 1 is the przesylka
    itself; parcels 2.. are its subPrzesylka (pocztex types only), each with its own derived guid."""
    type_name = SERVICE_TYPES.get(request.service)
    if type_name is None:
        raise PermanentError(f"{CARRIER} addShipment: unknown service {request.service!r} "
                             f"(known: {', '.join(SERVICE_TYPES)})")
    unknown = sorted(set(request.options) - set(REQUEST_OPTIONS))
    if unknown:
        raise PermanentError(f"{CARRIER} addShipment: unknown option {', '.join(unknown)} "
                             f"(known: {', '.join(REQUEST_OPTIONS)})")
    if not request.parcels:
        raise PermanentError(f"{CARRIER} addShipment: the shipment has no parcels")
    if len(request.parcels) > 1 and type_name not in MULTI_PARCEL:
        raise PermanentError(f"{CARRIER} addShipment: service {request.service} takes one parcel "
                             f"({len(request.parcels)} given); book one shipment per parcel or use pocztex_kurier")
    guids = guids_for(request.reference, len(request.parcels))
    first = request.parcels[0]
    fields: dict[str, Any] = {
        "guid": guids[0],
        "opis": request.reference[:500],  # opisType: shows our reference in EN's buffer view
        "adres": adres(request.receiver, role="receiver"),
        "nadawca": adres(request.sender, role="sender"),
    }
    options = request.options
    if type_name in MULTI_PARCEL:
        fields.update(_pocztex(request, type_name, first, guids))
    else:
        if request.pickup_point is not None:
            raise PermanentError(f"{CARRIER} addShipment: service {request.service} does not deliver to a pickup "
                                 "point; use pocztex_kurier")
        fields["kategoria"] = _choice(options, "kategoria", KATEGORIE, "EKONOMICZNA")
        fields["gabaryt"] = _choice(options, "gabaryt", GABARYTY, "GABARYT_A")
        fields["masa"] = grams(first.weight_kg)
        wartosc = _wartosc(request)
        if type_name == "paczkaPocztowaType":
            if request.cod is not None:
                raise PermanentError(f"{CARRIER} addShipment: service {request.service} takes no cash on delivery "
                                     "(paczkaPocztowaType has no pobranie); use przesylka_pobraniowa")
            fields["wartosc"] = wartosc
        else:  # przesylkaPobraniowaType: wartosc is required there
            if request.cod is None:
                raise PermanentError(f"{CARRIER} addShipment: service {request.service} needs cash on delivery")
            fields["wartosc"] = wartosc if wartosc is not None else 0
            fields["pobranie"] = _pobranie(request)
            fields["ostroznie"] = _flag(options, "ostroznie")
    return type_name, {key: value for key, value in fields.items() if value is not None}


def _pocztex(request: ShipmentRequest, type_name: str, first: Parcel, guids: Sequence[str]) -> dict[str, Any]:
    options = request.options
    template = first.template if first.template in POCZTEX_FORMATS else None
    fields: dict[str, Any] = {
        "pobranie": _pobranie(request),
        "masa": grams(first.weight_kg),
        "wartosc": _wartosc(request),
        "ostroznie": _flag(options, "ostroznie"),
        "format": _choice(options, "format", POCZTEX_FORMATS, template),
        "zawartosc": {"zawartoscInna": request.content} if request.content else None,
    }
    if len(request.parcels) > 1:
        fields["subPrzesylka"] = [
            {"guid": guid, "masa": grams(parcel.weight_kg, field=f"parcel {n} masa"),
             "format": parcel.template if parcel.template in POCZTEX_FORMATS else fields["format"]}
            for n, (guid, parcel) in enumerate(zip(guids[1:], request.parcels[1:], strict=True), start=2)]
    if type_name == "pocztex2021KurierType":
        if request.pickup_point is not None:
            fields["punktOdbioru"] = {"id": _placowka_id(request.pickup_point.id)}
    else:
        if request.pickup_point is not None:
            raise PermanentError(f"{CARRIER} addShipment: service {request.service} does not deliver to a pickup "
                                 "point; use pocztex_kurier")
        fields["obszar"] = _choice(options, "obszar", OBSZARY, None)
    return fields


def _placowka_id(point_id: str) -> int:
    """placowkaPocztowaType/@id is an xsd:int (getPlacowkiPocztowe's ids)."""
    try:
        return int(point_id)
    except ValueError:
        raise PermanentError(f"{CARRIER} addShipment: pickup point id {point_id!r} is not an EN placowka id "
                             "(a number from getPlacowkiPocztowe)") from None


# --- answers ------------------------------------------------------------------------------------


def errors_text(errors: Iterable[Mapping[str, Any]] | None) -> str:
    """errorType elements as one line: "[errorNumber] errorDesc" joined by "; "."""
    parts = []
    for error in errors or ():
        number = error.get("errorNumber")
        desc = " ".join(str(error.get("errorDesc") or "no description").split())
        parts.append(f"[{number}] {desc}" if number not in (None, 0) else desc)
    return "; ".join(parts)


def added_number(retval: Sequence[Mapping[str, Any]], guid: str) -> tuple[str | None, str]:
    """(numerNadania, errors) of our guid in addShipment's answer (addShipmentResponseItemType)."""
    for item in retval:
        if item.get("guid") == guid:
            return item.get("numerNadania"), errors_text(item.get("error"))
    raise RetryableError(f"{CARRIER} addShipment: the answer has no retval for guid {guid}; the next attempt "
                         "looks the parcel up in the buffer")


def numbers_in_buffer(przesylki: Iterable[Mapping[str, Any]]) -> dict[str, str | None]:
    """guid -> numerNadania of getEnvelopeBufor's przesylka (attribute of przesylkaRejestrowanaType) and
    of their subPrzesylka (element of subPocztex2021Type)."""
    found: dict[str, str | None] = {}
    for item in przesylki:
        guid = item.get("guid")
        if guid:
            found[guid] = item.get("numerNadania")
        for sub in item.get("subPrzesylka") or ():
            if sub.get("guid"):
                found[sub["guid"]] = sub.get("numerNadania")
    return found


def numbers_in_envelope(przesylki: Iterable[Mapping[str, Any]]) -> dict[str, str | None]:
    """guid -> numerNadania of getEnvelopeContentShort's przesylkaShortType."""
    return {item["guid"]: item.get("numerNadania") for item in przesylki if item.get("guid")}


def booking(reference: str, guids: Sequence[str], numbers: Mapping[str, str | None],
            handles: Mapping[str, str]) -> Booking:
    """The Booking once every parcel has its numerNadania; RetryableError names the missing one."""
    parcels = []
    for n, guid in enumerate(guids, start=1):
        if guid not in numbers:
            raise PermanentError(f"{CARRIER}: EN holds shipment {reference} without its parcel {n} (guid {guid}): "
                                 "it was booked with fewer parcels; cancel it and book it under a new reference")
        number = numbers[guid]
        if not number:
            raise RetryableError(f"{CARRIER} getEnvelopeBufor: parcel {n} (guid {guid}) has no numerNadania yet")
        parcels.append(BookedParcel(tracking_number=number, external_id=guid))
    return Booking(reference=reference, external_id=guids[0], parcels=parcels, operator=OPERATOR,
                   handles={**handles, "guids": ",".join(guids)})


def booking_guids(booking: Booking) -> list[str]:
    """Every parcel's guid, from the handles (or the parcels' external ids)."""
    if booking.handles.get("guids"):
        return booking.handles["guids"].split(",")
    guids = [p.external_id for p in booking.parcels if p.external_id]
    return guids or [booking.external_id]


def zamow_kuriera(request: PickupRequest, email: str | None) -> dict[str, Any]:
    """zamowKuriera's elements. The schema types the date, hour, count and weight as plain xsd:string
    and documents no format: we send ISO dates, "HH:MM" (the window's local start) and kilograms."""
    if request.parcels < 1 or request.weight_kg <= 0:
        raise PermanentError(f"{CARRIER} zamowKuriera: a courier order needs at least one parcel and a weight")
    miejsce = adres(request.address, role="pickup")
    weight = format(request.weight_kg.normalize(), "f")
    fields: dict[str, Any] = {
        "miejsceOdbioru": miejsce,
        "nadawca": miejsce,
        "oczekiwanaDataOdbioru": request.window.day.isoformat(),
        "oczekiwanaGodzinaOdbioru": request.window.start.strftime("%H:%M"),
        "szacowanaIloscPrzeslek": str(request.parcels),
        "szacowanaLacznaMasaPrzesylek": weight,
    }
    confirm = email or request.address.email
    if confirm and 6 <= len(confirm) <= 50:
        fields["potwierdzenieZamowieniaEmail"] = confirm
    return fields


def windows_for(day: date, today: date, windows: Sequence[str], weekdays: Sequence[int]) -> list[PickupWindow]:
    """The configured windows on a configured weekday from today on (EN has no call listing them)."""
    if day < today or day.isoweekday() not in weekdays:
        return []
    out = []
    for window in windows:
        start, end = window.split("-")
        out.append(PickupWindow(day=day, start=time.fromisoformat(start), end=time.fromisoformat(end)))
    return out

