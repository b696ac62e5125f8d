"""Money is Decimal, never float, and rounds to the grosz the Polish way.

Art. 106e ust. 11 of the VAT act: below half a grosz is dropped, half a grosz and more rounds up
(ROUND_HALF_UP, not Decimal's default of rounding half to even).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

GROSZ = Decimal("0.01")


def to_grosz(value: Decimal) -> Decimal:
    """To the grosz, half a grosz and more up."""
    return value.quantize(GROSZ, rounding=ROUND_HALF_UP)
