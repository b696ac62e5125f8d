"""Business rules for ERP feed rows, shared by every ERP connector and free of any vendor.

An ERP export is written by people and spreadsheets: decimal commas, ``23%``,
``1 299,00``, EANs mangled into ``5,90123E+12``. ``parse_row`` accepts the
spellings a Polish seller's ERP really produces, turns a row into the port's
records, and otherwise reports *every* bad field of the row (not just the
first), so one look at the quarantine is enough to fix the export.
Money and quantities are Decimal and int only; a float is never computed with.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from stdnum import ean as gtin
from stdnum.exceptions import InvalidChecksum, InvalidLength, ValidationError

from hub.kernel.money import GROSZ, currency_code
from hub.kernel.ports.erp import FeedRow, PriceRecord, ProductRecord, RejectedRecord, StockRecord
from hub.kernel.vat import CATALOGUE_CODES, CODE_FOR_PERCENT, NO_VAT_CODES, VatRate

REQUIRED_COLUMNS: tuple[str, ...] = ("sku", "name", "stock", "price_gross", "vat_rate")
OPTIONAL_COLUMNS: tuple[str, ...] = ("ean", "cost_net", "currency", "weight_kg", "warehouse")
COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

# A feed row's VAT rate is one of the codes a product in a catalogue carries (hub.kernel.vat): a
# percentage (23.00 -> "23") or a code without VAT ("ZW" -> "zw").
_RATE_CODES: dict[Decimal, VatRate] = {p: c for p, c in CODE_FOR_PERCENT.items() if c in CATALOGUE_CODES}
_WORD_CODES: frozenset[VatRate] = frozenset(c for c in CATALOGUE_CODES if c in NO_VAT_CODES)

DEFAULT_CURRENCY = "PLN"
DEFAULT_WAREHOUSE = "default"
MAX_KEY_LENGTH = 100  # products.sku and stock_levels.warehouse are String(100)
MAX_STOCK = 2**31 - 1  # stock_levels.quantity is a 32-bit integer
# Bounds of the hub's columns, so a row that passes validation is always storable.
_MONEY_LIMIT = Decimal(10) ** 12  # Numeric(14, 2)
_COST_LIMIT = Decimal(10) ** 10  # Numeric(14, 4)
_WEIGHT_LIMIT = Decimal(10) ** 7  # Numeric(10, 3)

# Thousands separators a spreadsheet writes: space, no-break space, narrow and thin no-break space.
_SPACES = " \u00a0\u202f\u2009"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class ParsedRow:
    """One valid feed row: a SKU's product and price, and its stock in one warehouse."""

    erp: str
    source: str
    product: ProductRecord
    stock: StockRecord
    price: PriceRecord

    @property
    def key(self) -> tuple[str, str]:
        return self.stock.sku, self.stock.warehouse


class _Bad(ValueError):
    """A field's value is wrong; the message is the reason an operator reads."""


def as_text(value: object) -> str:
    """The raw value as an operator would see it in the export (None: empty)."""
    return "" if value is None else str(value)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_decimal(value: object, *, decimal_comma: bool | None = None) -> Decimal:
    """A Decimal from a number or from text as ERPs and spreadsheets write it.

    ``decimal_comma``: True, the comma is the decimal separator ("1.299,00"); False, the dot
    is ("1,299.00"); None (auto), the last of a comma and a dot is the decimal separator and a
    lone comma is decimal ("19,99"). Spaces and no-break spaces group thousands ("1 299,00").
    Groups must be of three digits, so an ambiguous value is refused rather than misread.
    """
    if isinstance(value, bool):
        raise _Bad("is a true/false value, not a number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _Bad("is not a finite number")
        return value
    if isinstance(value, float):
        # a driver's REAL column: its shortest repr is the value the ERP stored, no arithmetic on it
        if not math.isfinite(value):
            raise _Bad("is not a finite number")
        return Decimal(repr(value))
    if not isinstance(value, str):
        raise _Bad(f"is not a number ({type(value).__name__})")
    text = value.strip().replace("\u2212", "-")
    # the common cases at once (bench/scale.py: the general pattern below, built per call, was most of a
    # feed's parsing): plain digits with a dot, or a comma, that the general rules read the same way
    if decimal_comma is not True and _PLAIN_DOT.fullmatch(text):
        return Decimal(text)
    if decimal_comma is not False and _PLAIN_COMMA.fullmatch(text):
        return Decimal(text.replace(",", "."))
    if decimal_comma is None:
        comma, dot = text.rfind(","), text.rfind(".")
        decimal_sep = "," if comma > dot else "."
    else:
        decimal_sep = "," if decimal_comma else "."
    group = re.escape(_SPACES + ("." if decimal_sep == "," else ","))
    match = re.fullmatch(
        rf"(?P<sign>[-+]?)(?P<int>\d{{1,3}}(?:(?P<sep>[{group}])\d{{3}}(?:(?P=sep)\d{{3}})*)|\d*)"
        rf"(?:{re.escape(decimal_sep)}(?P<frac>\d+))?",
        text,
        flags=re.ASCII,  # 0-9 only: no other script's digits slip through
    )
    if not match or not (match["int"] or match["frac"]):
        raise _Bad("is not a number (write e.g. 19,99 or 1 299.00)")
    digits = re.sub(rf"[{group}]", "", match["int"]) or "0"
    return Decimal(f"{match['sign']}{digits}.{match['frac']}" if match["frac"] else f"{match['sign']}{digits}")


_PLAIN_DOT = re.compile(r"[-+]?\d+(?:\.\d+)?", re.ASCII)
_PLAIN_COMMA = re.compile(r"[-+]?\d+,\d+", re.ASCII)


def _places(value: Decimal) -> int:
    """Decimal places that matter: 19.9900 (an ERP's fixed four places) has two."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _amount(value: object, *, decimal_comma: bool | None, places: int, limit: Decimal, positive: bool) -> Decimal:
    number = parse_decimal(value, decimal_comma=decimal_comma)
    if positive and number <= 0:
        raise _Bad("must be greater than zero")
    if number < 0:
        raise _Bad("cannot be negative")
    if _places(number) > places:
        raise _Bad(f"has more than {places} decimal places")
    if number >= limit:
        raise _Bad(f"is too large (must be below {limit:,})")
    return number


def _key_text(value: object) -> str:
    """SKU and warehouse: text (an integer from JSON or SQL is fine), trimmed, storable."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Bad(f"must be text, not {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise _Bad("is required but empty")
    if len(text) > MAX_KEY_LENGTH:
        raise _Bad(f"is longer than {MAX_KEY_LENGTH} characters")
    if _CONTROL.search(text):
        raise _Bad("contains a control character (a line break or a tab?)")
    return text


def _warehouse(value: object) -> str:
    return DEFAULT_WAREHOUSE if _blank(value) else _key_text(value)


def _name(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise _Bad(f"must be text, not {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise _Bad("is required but empty")
    control = _CONTROL.search(text)
    if control:
        raise _Bad(f"contains a control character ({control.group()!r} at position {control.start() + 1}): a damaged "
                   "export, or one in another encoding")
    return text


def _stock(value: object, *, decimal_comma: bool | None) -> int:
    number = parse_decimal(value, decimal_comma=decimal_comma)
    if number != number.to_integral_value():
        raise _Bad("must be a whole number of units")
    if number < 0:
        raise _Bad("cannot be negative")
    if number > MAX_STOCK:
        raise _Bad("is too large")
    return int(number)


def _price(value: object, *, decimal_comma: bool | None) -> Decimal:
    number = _amount(value, decimal_comma=decimal_comma, places=2, limit=_MONEY_LIMIT, positive=True)
    return number.quantize(GROSZ)


def _vat(value: object) -> VatRate:
    allowed = ", ".join(CATALOGUE_CODES)
    if isinstance(value, str):
        value = value.strip().lower().removesuffix("%").strip().removesuffix(".")
        if value in _WORD_CODES:
            return value  # type: ignore[return-value]  # one of the catalogue's codes without VAT
    try:
        number = parse_decimal(value)
    except _Bad:
        raise _Bad(f"is not a Polish VAT rate ({allowed})") from None
    if number in _RATE_CODES:
        return _RATE_CODES[number]
    if 0 < number < 1 and number * 100 in _RATE_CODES:
        raise _Bad(f"looks like a fraction; write the percentage ({_RATE_CODES[number * 100]}), one of {allowed}")
    raise _Bad(f"is not a Polish VAT rate ({allowed})")


def _ean(value: object) -> str | None:
    if _blank(value):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Bad("must be written as digits, not as a decimal number")
    text = str(value)
    try:
        return str(gtin.validate(text))
    except InvalidChecksum:
        raise _Bad("has a wrong check digit") from None
    except InvalidLength:
        raise _Bad("must have 8, 12, 13 or 14 digits (EAN-8, UPC-A, EAN-13, GTIN-14)") from None
    except ValidationError:
        hint = " (a spreadsheet turned it into scientific notation?)" if "e" in text.lower() else ""
        raise _Bad(f"must be digits only{hint}") from None


def _cost(value: object, *, decimal_comma: bool | None) -> Decimal | None:
    if _blank(value):
        return None
    return _amount(value, decimal_comma=decimal_comma, places=4, limit=_COST_LIMIT, positive=False)


def _weight(value: object, *, decimal_comma: bool | None) -> Decimal | None:
    if _blank(value):
        return None
    return _amount(value, decimal_comma=decimal_comma, places=3, limit=_WEIGHT_LIMIT, positive=False)


def _currency(value: object) -> str:
    if _blank(value):
        return DEFAULT_CURRENCY
    try:
        return currency_code(str(value))
    except ValueError as exc:
        raise _Bad(str(exc)) from None


@functools.lru_cache(maxsize=1024)  # a feed has a handful of column names, asked for on every row
def normalize_column(name: str) -> str:
    """A column name as feeds are matched: trimmed, without a BOM, lower-case."""
    return name.strip().lstrip("\ufeff").strip().lower()


def parse_row(
    raw: Mapping[str, object], *, erp: str, source: str, decimal_comma: bool | None = None,
    normalized: bool = False,
) -> ParsedRow | list[RejectedRecord]:
    """Validate one feed row (column -> raw value); a ParsedRow, or one RejectedRecord per bad field.

    Column names are matched trimmed and case-insensitively; unknown columns are ignored
    (``normalized``: the caller's names are already as ``normalize_column`` makes them).
    ``decimal_comma`` as in ``parse_decimal`` (None: auto).
    """
    row = _normalized(raw, normalized)
    plain = _plain_row(row, erp, source, decimal_comma)
    if plain is not None:
        return plain
    return _general_row(row, erp=erp, source=source, decimal_comma=decimal_comma)


def parse_feed_row(
    raw: Mapping[str, object], *, erp: str, source: str, position: int, fingerprint: int | None,
    decimal_comma: bool | None = None, normalized: bool = False,
) -> FeedRow | list[RejectedRecord]:
    """``parse_row`` for a read of the whole catalogue: the row as the stage takes it. A plain row goes
    straight into its FeedRow, without the records and the ParsedRow a first read would build a
    million times."""
    row = _normalized(raw, normalized)
    values = _plain_values(row, decimal_comma)
    if values is not None:
        return FeedRow(position, source, fingerprint, *values)
    parsed = _general_row(row, erp=erp, source=source, decimal_comma=decimal_comma)
    if isinstance(parsed, ParsedRow):
        return FeedRow.of(parsed.product, parsed.stock, parsed.price, source, position, fingerprint)
    return parsed


def _normalized(raw: Mapping[str, object], normalized: bool) -> Mapping[str, Any]:
    return raw if normalized else {normalize_column(str(k)): v for k, v in raw.items()}


def _general_row(row: Mapping[str, Any], *, erp: str, source: str,
                 decimal_comma: bool | None) -> ParsedRow | list[RejectedRecord]:
    """Every field by its rules, naming each problem."""
    values: dict[str, Any] = {}
    errors: list[tuple[str, str]] = []

    def field(column: str, parse: Any, *, required: bool = False) -> None:
        value = row.get(column)
        if required and _blank(value):
            errors.append((column, "is required but empty"))
            return
        try:
            values[column] = parse(value)
        except _Bad as exc:
            errors.append((column, str(exc)))

    field("sku", _key_text, required=True)
    field("name", _name, required=True)
    field("stock", lambda v: _stock(v, decimal_comma=decimal_comma), required=True)
    field("price_gross", lambda v: _price(v, decimal_comma=decimal_comma), required=True)
    field("vat_rate", _vat, required=True)
    field("ean", _ean)
    field("cost_net", lambda v: _cost(v, decimal_comma=decimal_comma))
    field("currency", _currency)
    field("weight_kg", lambda v: _weight(v, decimal_comma=decimal_comma))
    field("warehouse", _warehouse)

    if errors:
        sku = values.get("sku")
        return [RejectedRecord(source, sku, column, as_text(row.get(column)), f"{column} {reason}")
                for column, reason in errors]
    sku = values["sku"]
    return ParsedRow(
        erp=erp,
        source=source,
        product=ProductRecord(sku=sku, name=values["name"], vat_rate=values["vat_rate"], ean=values["ean"],
                              weight_kg=values["weight_kg"]),
        stock=StockRecord(sku=sku, warehouse=values["warehouse"], quantity=values["stock"]),
        price=PriceRecord(sku=sku, price_gross=values["price_gross"], currency=values["currency"],
                          cost_net=values["cost_net"]),
    )


# --- the common row at once ----------------------------------------------------------------------
# Most rows of an export are written the plain way: digits with at most one decimal separator, a VAT
# rate as its number, an EAN of digits. _plain_row reads such a row with a pattern per field and gives
# exactly what the general rules above give for it (tests/catalog/test_feed_rules.py checks the two
# against each other on generated rows); anything else, including every wrong value, goes the general
# way, which names each problem. bench/scale.py: the general way was two thirds of a feed's first read.

def _plain_number(places: int, digits: int) -> dict[bool | None, re.Pattern[str]]:
    """Unsigned, no grouping, up to ``digits`` integer digits and ``places`` decimals, with the decimal
    separators the option allows (None: either)."""
    fraction = f"\\d{{1,{places}}}"
    return {None: re.compile(rf"\d{{1,{digits}}}(?:[.,]{fraction})?", re.ASCII),
            True: re.compile(rf"\d{{1,{digits}}}(?:,{fraction})?", re.ASCII),
            False: re.compile(rf"\d{{1,{digits}}}(?:\.{fraction})?", re.ASCII)}


_PLAIN_PRICE = _plain_number(2, 12)  # Numeric(14, 2): below 10**12
_PLAIN_COST = _plain_number(4, 10)  # Numeric(14, 4): below 10**10
_PLAIN_WEIGHT = _plain_number(3, 7)  # Numeric(10, 3): below 10**7
_PLAIN_STOCK = re.compile(r"\d{1,9}", re.ASCII)  # below MAX_STOCK
_PLAIN_VAT: dict[str, VatRate] = {**{code: code for code in CATALOGUE_CODES},
                                  **{code.upper(): code for code in CATALOGUE_CODES if code in _WORD_CODES}}
_PLAIN_CURRENCIES: dict[str, str] = {}


def _plain_text(value: object) -> str | None:
    if type(value) is not str:
        return None
    text = value.strip()
    if not text or len(text) > MAX_KEY_LENGTH or _CONTROL.search(text):
        return None
    return text


def _plain_decimal(value: object, patterns: dict[bool | None, re.Pattern[str]],
                   decimal_comma: bool | None) -> Decimal | None:
    if type(value) is not str:
        return None
    text = value.strip()
    if not patterns[decimal_comma].fullmatch(text):
        return None
    return Decimal(text.replace(",", ".")) if "," in text else Decimal(text)


_NOT_PLAIN: Any = object()


def _plain_optional(value: object, patterns: dict[bool | None, re.Pattern[str]],
                    decimal_comma: bool | None) -> Decimal | Any | None:
    """An optional amount: None when blank, _NOT_PLAIN when not written the plain way."""
    if value is None or (type(value) is str and not value.strip()):
        return None
    number = _plain_decimal(value, patterns, decimal_comma)
    return _NOT_PLAIN if number is None else number


def _plain_ean(text: str) -> bool:
    """Digits of an EAN-8, UPC-A, EAN-13 or GTIN-14 with a right check digit."""
    if len(text) not in (8, 12, 13, 14) or not text.isascii() or not text.isdigit():
        return False
    # the digits' bytes summed, less 48 ("0") each: a third of int() per digit, once per row of every feed
    digits = text.encode()
    tripled, single = digits[-2::-2], digits[-3::-2]
    total = 3 * (sum(tripled) - 48 * len(tripled)) + sum(single) - 48 * len(single)
    return (10 - total % 10) % 10 == digits[-1] - 48


def _plain_row(row: Mapping[str, Any], erp: str, source: str, decimal_comma: bool | None) -> ParsedRow | None:
    """The row if every field is written the plain way, else None (the general rules then read it)."""
    values = _plain_values(row, decimal_comma)
    if values is None:
        return None
    sku, warehouse, quantity, name, ean, vat, weight, price, currency, cost = values
    return ParsedRow(erp, source, ProductRecord(sku, name, vat, ean, weight), StockRecord(sku, warehouse, quantity),
                     PriceRecord(sku, price, currency, cost))


def _plain_values(row: Mapping[str, Any], decimal_comma: bool | None) -> tuple[Any, ...] | None:
    """A plain row's values in FeedRow's order from its SKU on, else None."""
    sku = _plain_text(row.get("sku"))
    name = row.get("name")
    if sku is None or type(name) is not str:
        return None
    name = name.strip()
    if not name or _CONTROL.search(name):
        return None
    stock = row.get("stock")
    if type(stock) is not str or not _PLAIN_STOCK.fullmatch(stock := stock.strip()):
        return None
    price = _plain_decimal(row.get("price_gross"), _PLAIN_PRICE, decimal_comma)
    vat = row.get("vat_rate")
    vat = _PLAIN_VAT.get(vat.strip()) if type(vat) is str else None
    if price is None or not price or vat is None:
        return None
    ean = row.get("ean")
    if ean is not None:
        if type(ean) is not str:
            return None
        ean = ean.strip() or None
        if ean is not None and (ean != row["ean"] or not _plain_ean(ean)):
            return None  # blanks around an EAN, or a wrong one: the general rules say which
    cost = _plain_optional(row.get("cost_net"), _PLAIN_COST, decimal_comma)
    weight = _plain_optional(row.get("weight_kg"), _PLAIN_WEIGHT, decimal_comma)
    if cost is _NOT_PLAIN or weight is _NOT_PLAIN:
        return None
    currency = row.get("currency")
    if currency is None or (type(currency) is str and not currency.strip()):
        currency = DEFAULT_CURRENCY
    elif type(currency) is str and currency in _PLAIN_CURRENCIES:
        currency = _PLAIN_CURRENCIES[currency]
    else:
        try:
            code = currency_code(str(currency))
        except ValueError:
            return None
        if type(currency) is str and len(_PLAIN_CURRENCIES) < 64:
            _PLAIN_CURRENCIES[currency] = code
        currency = code
    warehouse = row.get("warehouse")
    if warehouse is None or (type(warehouse) is str and not warehouse.strip()):
        warehouse = DEFAULT_WAREHOUSE
    else:
        warehouse = _plain_text(warehouse)
        if warehouse is None:
            return None
    return sku, warehouse, int(stock), name, ean, vat, weight, price.quantize(GROSZ), currency, cost


def missing_columns(header: Iterable[str]) -> list[str]:
    """Required columns a feed's header lacks (names compared trimmed and case-insensitively)."""
    present = {normalize_column(n) for n in header}
    return [c for c in REQUIRED_COLUMNS if c not in present]


def check_header(header: Iterable[str], *, source: str) -> list[RejectedRecord]:
    """Why a feed file must be rejected as a whole: a required column missing, or a known column twice.

    A file with such a header contributes no records at all, so a broken export can never
    zero the catalogue.
    """
    names = [normalize_column(n) for n in header]
    rejected = [RejectedRecord(source, None, c, "", "required column missing") for c in missing_columns(names)]
    for column in COLUMNS:
        if names.count(column) > 1:
            rejected.append(RejectedRecord(source, None, column, "", "column appears more than once"))
    return rejected


# Fields that describe the SKU rather than one warehouse's stock: every row of a SKU must agree.
_SKU_FIELDS: tuple[tuple[str, str], ...] = (
    ("product", "name"), ("product", "vat_rate"), ("product", "ean"), ("product", "weight_kg"),
    ("price", "price_gross"), ("price", "currency"), ("price", "cost_net"),
)


class FeedRules:
    """Cross-row rules of one feed read: a (sku, warehouse) appears once, and the rows of one SKU
    (one per warehouse) agree on its product and price. A row breaking them is rejected whole,
    the first row seen is kept, so a feed's result does not depend on which duplicate wins later."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], str] = {}
        self._first: dict[str, ParsedRow] = {}

    def check(self, row: ParsedRow) -> list[RejectedRecord]:
        sku, warehouse = row.key
        earlier = self._keys.get(row.key)
        if earlier is not None:
            return [RejectedRecord(row.source, sku, "sku", sku,
                                   f"duplicate row for sku {sku!r} in warehouse {warehouse!r}: "
                                   f"{earlier} has it already (one row per SKU and warehouse)")]
        first = self._first.get(sku)
        rejected: list[RejectedRecord] = []
        if first is not None:
            for part, attr in _SKU_FIELDS:
                mine, theirs = getattr(getattr(row, part), attr), getattr(getattr(first, part), attr)
                if mine != theirs:
                    rejected.append(RejectedRecord(
                        row.source, sku, attr, as_text(mine),
                        f"{attr} differs from {first.source} ({as_text(theirs)!r}) for the same SKU; "
                        f"every warehouse row of a SKU must carry the same {attr}"))
        if not rejected:
            self._keys[row.key] = row.source
            self._first.setdefault(sku, row)
        return rejected


def records(rows: Iterable[ParsedRow]) -> tuple[list[ProductRecord], list[StockRecord], list[PriceRecord]]:
    """The port's records for rows: stock per row, product and price once per SKU."""
    products: list[ProductRecord] = []
    stock: list[StockRecord] = []
    prices: list[PriceRecord] = []
    seen: set[str] = set()
    for row in rows:
        stock.append(row.stock)
        if row.stock.sku not in seen:
            seen.add(row.stock.sku)
            products.append(row.product)
            prices.append(row.price)
    return products, stock, prices
