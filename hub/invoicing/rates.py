"""The VAT rates an invoice names (FA(3)'s TStawkaPodatku) and how a catalogue's code becomes one.

A catalogue says ``23``, ``8``, ``5``, ``0``, ``zw`` or ``np`` (hub.kernel.vat); an invoice must say which
0 % it is (``0 KR`` domestic, ``0 WDT`` intra-EU supply, ``0 EX`` export) and which "not subject" (``np I``
goods and services outside Poland, ``np II`` services of art. 100 ust. 1 pkt 4). The seller decides the
zero rates for foreign buyers (InvoicingSettings.zero_rate_intra_eu / zero_rate_export): they need
evidence only the seller holds, so the hub applies them only when told.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

InvoiceRate = Literal["23", "8", "5", "0 KR", "0 WDT", "0 EX", "zw", "np I", "np II", "oo"]

# every rate in the order FA(3) lists its totals, with its percentage (None: no VAT on the line at all)
PERCENT: dict[InvoiceRate, Decimal | None] = {
    "23": Decimal(23), "8": Decimal(8), "5": Decimal(5), "0 KR": Decimal(0), "0 WDT": Decimal(0),
    "0 EX": Decimal(0), "zw": None, "np I": None, "np II": None, "oo": None,
}
RATES: tuple[InvoiceRate, ...] = tuple(PERCENT)

# FA(3)'s per-rate fields: (net total, VAT total or None, VAT in PLN or None)
TOTAL_FIELDS: dict[InvoiceRate, tuple[str, str | None, str | None]] = {
    "23": ("P_13_1", "P_14_1", "P_14_1W"), "8": ("P_13_2", "P_14_2", "P_14_2W"),
    "5": ("P_13_3", "P_14_3", "P_14_3W"), "0 KR": ("P_13_6_1", None, None), "0 WDT": ("P_13_6_2", None, None),
    "0 EX": ("P_13_6_3", None, None), "zw": ("P_13_7", None, None), "np I": ("P_13_8", None, None),
    "np II": ("P_13_9", None, None), "oo": ("P_13_10", None, None),
}


def rate_percent(rate: InvoiceRate) -> Decimal:
    """What a net amount grows by (0 for the rates without VAT)."""
    return PERCENT[rate] or Decimal(0)


def invoice_rate(code: str, *, zero_rate: Literal["WDT", "EX"] | None = None) -> InvoiceRate:
    """The invoice's rate for a catalogue or channel code (``23``, ``0``, ``np``...), or for an invoice
    rate already (``0 KR``). ``zero_rate`` is the seller's 0 % for this buyer (intra-EU supply or export):
    every taxed line takes it. ValueError for a code that is not a Polish VAT rate."""
    if code in PERCENT and code not in ("zw", "oo"):
        rate: InvoiceRate = code  # type: ignore[assignment]
    elif code == "0":
        rate = "0 KR"
    elif code == "np":
        rate = "np I"
    elif code in ("zw", "oo"):
        return code  # type: ignore[return-value]
    else:
        raise ValueError(f"{code!r} is not a Polish VAT rate")
    if zero_rate is not None and rate in ("23", "8", "5", "0 KR"):
        return "0 WDT" if zero_rate == "WDT" else "0 EX"
    return rate
