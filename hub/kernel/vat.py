"""The Polish VAT codes: the one list every part of the hub (and every connector) checks against.

A code is what ERP feeds, channels and documents use for a rate; its percentage is what applies
to the net amount: none for exempt (``zw``), not subject to Polish VAT (``np``) and reverse
charge (``oo``), whose lines carry no VAT (net = gross). ``oo`` describes an invoice to a business
buyer rather than a product's price, so a catalogue never carries it.

The codes are law, not the seller's configuration: there is no mappings file for them. Also here:
the NIP (the Polish VAT id) in the one form documents and ERPs take.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal

VatRate = Literal["23", "8", "5", "0", "zw", "np", "oo"]

# every code, in the order documents list them, with its percentage (None: no VAT at all)
VAT_PERCENT: dict[VatRate, Decimal | None] = {
    "23": Decimal(23), "8": Decimal(8), "5": Decimal(5), "0": Decimal(0), "zw": None, "np": None, "oo": None,
}
VAT_CODES: tuple[VatRate, ...] = tuple(VAT_PERCENT)
# the codes a product in a catalogue may carry
CATALOGUE_CODES: tuple[VatRate, ...] = ("23", "8", "5", "0", "zw", "np")
# the codes without VAT: their lines are net = gross
NO_VAT_CODES: frozenset[VatRate] = frozenset(code for code, percent in VAT_PERCENT.items() if percent is None)
# the codes with a percentage, by it: what a channel's or a feed's ``23.00`` means (Decimal keys:
# Decimal("23.00") finds "23")
CODE_FOR_PERCENT: dict[Decimal, VatRate] = {
    percent: code for code, percent in VAT_PERCENT.items() if percent is not None}

LABELS: dict[VatRate, str] = {
    "23": "stawka podstawowa 23%", "8": "stawka obniżona 8%", "5": "stawka obniżona 5%", "0": "0% (WDT, eksport)",
    "zw": "zwolnione z podatku", "np": "nie podlega opodatkowaniu w kraju", "oo": "odwrotne obciążenie",
}


def percent_for_net(code: str) -> Decimal | None:
    """The percentage by which a net amount grows to the gross (0 for the codes without VAT);
    None for a code that is not Polish."""
    if code not in VAT_PERCENT:
        return None
    return VAT_PERCENT[code] or Decimal(0)  # type: ignore[index]


def normalize_nip(nip: str | None) -> str:
    """A Polish NIP as its 10 digits (``PL 123-456-78-90`` -> ``1234567890``); another VAT id
    (``DE123456789``) upper-cased without spaces, dashes and dots; ``""`` for none."""
    if not nip:
        return ""
    compact = re.sub(r"[\s\-.]", "", nip).upper()
    digits = compact.removeprefix("PL")
    return digits if re.fullmatch(r"\d{10}", digits) else compact


HOME_COUNTRY = "PL"
# EU member states (ISO codes as channels give them)
EU_COUNTRIES = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT", "LU",
    "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
})
_VAT_PREFIX = {"GR": "EL"}  # Greece's VAT numbers start with EL


def eu_vat_prefix(country: str) -> str | None:
    """The VAT-number prefix of an EU member state; None outside the EU."""
    return _VAT_PREFIX.get(country, country) if country in EU_COUNTRIES else None
