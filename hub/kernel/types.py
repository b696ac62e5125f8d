"""Value types shared by several ports: postal addresses and pickup points."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Address:
    name: str
    street: str
    city: str
    postal_code: str
    country: str = "PL"
    company: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class PickupPoint:
    id: str
    name: str | None = None
    address: Address | None = None
