"""A shipment as the carrier port sees it: our sender as an address, a stored shipment as a booking
(what cancel, labels and pickups hand back to the carrier)."""

from __future__ import annotations

from hub.kernel.ports.carrier import BookedParcel, Booking
from hub.kernel.types import Address
from hub.platform.config import SenderSettings
from hub.shipping.models import Shipment, ShipmentParcel


def sender_address(sender: SenderSettings) -> Address:
    return Address(name=sender.name, street=sender.street, city=sender.city, postal_code=sender.postal_code,
                   country=sender.country, company=sender.company, phone=sender.phone, email=sender.email)


def booking_of(shipment: Shipment, parcels: list[ShipmentParcel]) -> Booking:
    return Booking(reference=shipment.reference, external_id=shipment.external_id or "",
                   parcels=[BookedParcel(tracking_number=p.tracking_number or "", external_id=p.external_id)
                            for p in parcels], operator=shipment.operator or "other",
                   handles=dict(shipment.handles or {}))
