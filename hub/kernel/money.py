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


# ISO 4217 codes of the currencies in circulation (the list of 1 January 2026: BGN gave way to the
# euro, ANG to XCG, ZWL to ZWG). Fund codes (BOV, CLF, USN...), precious metals (XAU...) and the
# testing and "no currency" codes (XTS, XXX) are left out: no shop sells in them.
_CODES = """
AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD
CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD
GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD
KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO
NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE
SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND
VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
"""
CURRENCIES = frozenset(_CODES.split())


def currency_code(value: str) -> str:
    """An ISO 4217 code in capitals; ValueError says what is wrong (``zł`` and ``PLX`` are not codes)."""
    text = value.strip().upper()
    if text not in CURRENCIES:
        raise ValueError("not an ISO 4217 currency code (a three-letter code such as PLN, EUR or USD)")
    return text
