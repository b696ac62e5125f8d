"""Pure translation between WooCommerce REST v3 JSON and hub.kernel.ports values (no I/O).

External ids carry what the batch endpoints need: ``"123"`` is a product
(``POST /products/batch``), ``"123/456"`` is variation 456 of product 123
(``POST /products/123/variations/batch``), so a push never has to look a
parent up first.

Prices: the hub controls what a buyer pays. A listing's price is the read-only ``price``
("Current product price": the sale price while a sale is on, the regular price otherwise),
not ``regular_price``. A push writes ``regular_price`` and, unless the seller runs promotions
in the shop (``allow_shop_sales``), clears any sale the seller set by hand (``sale_price``
and its dates set to ""), so the buyer pays the hub's price; the shop's answer must then show
that ``price``. With ``allow_shop_sales`` the sale stays, the answer is checked for the
regular price only, and the listing reports both: what the buyer pays, sale included, and the
regular price the hub sets (``list_price``), which is what the hub acknowledges.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from hub.kernel.errors import PermanentError
from hub.kernel.ports.channel import ChangeResult, Listing, ListingChange

from .schema import BATCH_LIMIT

_EXTERNAL_ID = re.compile(r"^([1-9]\d*)(?:/([1-9]\d*))?$")
_CENT = Decimal("0.01")
# product types whose own stock the hub cannot set: grouped ones are containers,
# external ones are sold elsewhere, variable ones keep stock on their variations
NO_OWN_STOCK = frozenset({"grouped", "external", "variable"})
# what ends a sale set in the shop: no sale price and no sale dates ("" clears a date; null is ignored)
SALE_CLEARED: dict[str, str] = {"sale_price": "", "date_on_sale_from": "", "date_on_sale_to": ""}


# --- reading ----------------------------------------------------------------------------


def parse_money(value: Any) -> Decimal | None:
    """A Woo price string as Decimal; ``""`` (no price set) and garbage are None."""
    if value is None or value == "":
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


class UnreadableAnswer(PermanentError):
    """An item the shop described against its own documentation: the whole read stops (exit 1, a dead
    job), because reconciliation would take a product left out for one that is gone."""


def product_id(product: Mapping[str, Any]) -> int:
    return _id(product, "product")


def _id(item: Mapping[str, Any], what: str) -> int:
    value = item.get("id")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UnreadableAnswer(f"WooCommerce {what} without a usable id: id = {value!r} (expected a positive "
                                "integer)")
    return value


def _quantity(item: Mapping[str, Any], what: str) -> int:
    """``stock_quantity``: an integer, or null when the shop does not manage the stock."""
    qty = item.get("stock_quantity")
    if qty is None:
        return 0
    if isinstance(qty, bool) or not isinstance(qty, int):
        raise UnreadableAnswer(f"WooCommerce {what}: stock_quantity = {qty!r}: expected an integer or null")
    return qty


def _amount(item: Mapping[str, Any], key: str, what: str) -> Decimal | None:
    """A price field: a decimal string, "" when no price is set (the documentation's type is string)."""
    value = item.get(key, "")
    amount = parse_money(value) if isinstance(value, str) else None
    if value != "" and amount is None:
        raise UnreadableAnswer(f"WooCommerce {what}: {key} = {value!r}: expected a price as a string "
                                '(e.g. "19.99") or ""')
    return amount


def buyer_price(item: Mapping[str, Any], what: str) -> Decimal | None:
    """What a buyer pays now: ``price``, the current price (the sale price while a sale is on). An answer
    without ``price`` (a plugin trimming fields) falls back to the sale price when ``on_sale``, else the
    regular price."""
    if "price" in item:
        return _amount(item, "price", what)
    if item.get("on_sale") is True and (sale := _amount(item, "sale_price", what)) is not None:
        return sale
    return _amount(item, "regular_price", what)


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _list_price(item: Mapping[str, Any], what: str, allow_shop_sales: bool) -> Decimal | None:
    """With shop sales allowed, the price the hub sets is the regular price (a push keeps the seller's
    sale): reported apart from what a buyer pays, so a running sale is neither drift nor a push."""
    return _amount(item, "regular_price", what) if allow_shop_sales else None


def product_listing(product: Mapping[str, Any], currency: str = "PLN", *, allow_shop_sales: bool = False) -> Listing:
    """A simple (or other stock-bearing) product as the shop shows it."""
    what = f"product {product.get('id')!r}"
    return Listing(
        external_id=str(_id(product, "product")),
        sku=_text(product.get("sku")),
        ean=_text(product.get("global_unique_id")),
        quantity=_quantity(product, what),
        price_gross=buyer_price(product, what),
        currency=currency,
        active=product.get("status", "publish") == "publish",
        list_price=_list_price(product, what, allow_shop_sales),
    )


def variation_listing(parent: Mapping[str, Any], variation: Mapping[str, Any], currency: str = "PLN", *,
                      allow_shop_sales: bool = False) -> Listing:
    """One variation; it is on sale only while both it and its product are published."""
    active = parent.get("status", "publish") == "publish" and variation.get("status", "publish") == "publish"
    parent_id = _id(parent, "product")
    what = f"product {parent_id} variation {variation.get('id')!r}"
    return Listing(
        external_id=f"{parent_id}/{_id(variation, f'product {parent_id} variation')}",
        sku=_text(variation.get("sku")),
        ean=_text(variation.get("global_unique_id")),
        quantity=_quantity(variation, what),
        price_gross=buyer_price(variation, what),
        currency=currency,
        active=active,
        list_price=_list_price(variation, what, allow_shop_sales),
    )


def has_own_stock(product: Mapping[str, Any]) -> bool:
    return product.get("type", "simple") not in NO_OWN_STOCK


def is_variable(product: Mapping[str, Any]) -> bool:
    return product.get("type") == "variable"


# --- writing ----------------------------------------------------------------------------


def parse_external_id(external_id: str) -> tuple[int, int | None] | None:
    """``"123"`` -> (123, None); ``"123/456"`` -> (123, 456); anything else -> None."""
    match = _EXTERNAL_ID.match(external_id.strip())
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)) if match.group(2) else None


def format_money(amount: Decimal) -> str:
    """Woo keeps prices as decimal strings; two places when that is exact, never rounded."""
    if amount == amount.quantize(_CENT):
        return f"{amount.quantize(_CENT):f}"
    return f"{amount.normalize():f}"


def update_item(woo_id: int, change: ListingChange, *, allow_shop_sales: bool = False) -> dict[str, Any]:
    """One ``update`` entry: absolute values, so sending it twice leaves the same state. A price ends a
    sale set in the shop unless ``allow_shop_sales``."""
    item: dict[str, Any] = {"id": woo_id}
    if change.quantity is not None:
        item["manage_stock"] = True  # a quantity only sticks while the shop manages stock
        item["stock_quantity"] = change.quantity
    if change.price_gross is not None:
        item["regular_price"] = format_money(change.price_gross)
        if not allow_shop_sales:
            item.update(SALE_CLEARED)
    return item


@dataclass(frozen=True)
class PlannedItem:
    index: int  # position in the changes given to push
    change: ListingChange
    woo_id: int


@dataclass(frozen=True)
class Batch:
    """One batch request: ``path`` is below ``/wp-json/wc/v3``."""

    path: str
    body: dict[str, Any]
    items: tuple[PlannedItem, ...]
    allow_shop_sales: bool = False  # False: the prices sent end any sale, so the answer's price must be theirs


@dataclass(frozen=True)
class PushPlan:
    batches: list[Batch]
    rejected: dict[int, ChangeResult]  # index -> result for changes never sent
    unchanged: dict[int, ChangeResult]  # index -> result for changes with nothing to set


def _reject(change: ListingChange, why: str) -> ChangeResult:
    return ChangeResult(change.external_id, ok=False, error=why, retryable=False)


def _problem(change: ListingChange, currency: str) -> str | None:
    if change.quantity is not None and change.quantity < 0:
        return f"quantity {change.quantity} is negative"
    if change.price_gross is not None:
        if not change.price_gross.is_finite() or change.price_gross < 0:
            return f"price {change.price_gross} is not a valid amount"
        if change.currency != currency:
            return f"price in {change.currency} but the shop sells in {currency}"
    return None


def _chunks(items: Sequence[PlannedItem], size: int) -> Iterable[tuple[PlannedItem, ...]]:
    for start in range(0, len(items), size):
        yield tuple(items[start:start + size])


def plan_push(changes: Sequence[ListingChange], *, currency: str = "PLN", batch_size: int = BATCH_LIMIT,
              allow_shop_sales: bool = False) -> PushPlan:
    """Group changes into product batches and per-parent variation batches of at most ``batch_size``.

    Products come first, then each parent's variations, each in the order the
    changes were given, so the plan (and its request bodies) is deterministic.
    A price clears the shop's sale price unless ``allow_shop_sales``.
    """
    if not 1 <= batch_size <= BATCH_LIMIT:
        raise ValueError(f"batch_size must be between 1 and {BATCH_LIMIT}")
    products: list[PlannedItem] = []
    variations: dict[int, list[PlannedItem]] = {}
    rejected: dict[int, ChangeResult] = {}
    unchanged: dict[int, ChangeResult] = {}
    for index, change in enumerate(changes):
        ids = parse_external_id(change.external_id)
        if ids is None:
            rejected[index] = _reject(change, f"{change.external_id!r} is not a WooCommerce id (123 or 123/456)")
            continue
        if problem := _problem(change, currency):
            rejected[index] = _reject(change, problem)
            continue
        if change.quantity is None and change.price_gross is None:
            unchanged[index] = ChangeResult(change.external_id, ok=True)
            continue
        product_id, variation_id = ids
        if variation_id is None:
            products.append(PlannedItem(index, change, product_id))
        else:
            variations.setdefault(product_id, []).append(PlannedItem(index, change, variation_id))
    def batch(path: str, chunk: tuple[PlannedItem, ...]) -> Batch:
        body = {"update": [update_item(i.woo_id, i.change, allow_shop_sales=allow_shop_sales) for i in chunk]}
        return Batch(path, body, chunk, allow_shop_sales)

    batches = [batch("/products/batch", chunk) for chunk in _chunks(products, batch_size)]
    for parent_id, items in variations.items():
        batches += [batch(f"/products/{parent_id}/variations/batch", chunk) for chunk in _chunks(items, batch_size)]
    return PushPlan(batches, rejected, unchanged)


# --- batch responses ----------------------------------------------------------------------


def _item_error(error: Mapping[str, Any]) -> tuple[str, bool]:
    code = str(error.get("code") or "error")
    message = str(error.get("message") or "").strip()
    data = error.get("data")
    status = data.get("status") if isinstance(data, Mapping) else None
    retryable = isinstance(status, int) and (status >= 500 or status in (408, 409, 429))
    return (f"{code}: {message}" if message else code), retryable


def _shows(item: PlannedItem, answer: Mapping[str, Any], allow_shop_sales: bool) -> str | None:
    """Why the shop's answer does not show the change, or None when it does: the quantity, the regular
    price, and (unless the shop may run its own sales) the price the buyer now pays."""
    change = item.change
    stock_shown = answer.get("manage_stock") is True and answer.get("stock_quantity") == change.quantity
    if change.quantity is not None and not stock_shown:
        return (f"shop answered manage_stock={answer.get('manage_stock')!r}, "
                f"stock_quantity={answer.get('stock_quantity')!r} after setting {change.quantity}")
    if change.price_gross is None:
        return None
    if parse_money(answer.get("regular_price")) != change.price_gross:
        return f"shop answered regular_price={answer.get('regular_price')!r} after setting {change.price_gross}"
    if not allow_shop_sales and "price" in answer and parse_money(answer.get("price")) != change.price_gross:
        return (f"shop answered price={answer.get('price')!r} (what a buyer pays; sale_price="
                f"{answer.get('sale_price')!r}) after setting {change.price_gross} and clearing the sale price")
    return None


def batch_results(batch: Batch, response: Any) -> list[tuple[int, ChangeResult]]:
    """One result per planned item from a batch response's ``update`` list.

    Woo answers in request order, each entry the updated object or
    ``{"id", "error": {code, message, data}}``; entries are matched by position
    when the ids line up and by id otherwise. An item with no answer is
    retryable: re-sending absolute values is harmless.
    """
    answers = response.get("update") if isinstance(response, Mapping) else None
    answers = [a for a in answers if isinstance(a, Mapping)] if isinstance(answers, list) else []
    positional = len(answers) == len(batch.items) and all(
        a.get("id") == i.woo_id for a, i in zip(answers, batch.items, strict=True)
    )
    by_id: dict[Any, list[Mapping[str, Any]]] = {}
    if not positional:
        for answer in answers:
            by_id.setdefault(answer.get("id"), []).append(answer)
    out: list[tuple[int, ChangeResult]] = []
    for position, item in enumerate(batch.items):
        external_id = item.change.external_id
        if positional:
            answer: Mapping[str, Any] | None = answers[position]
        else:
            candidates = by_id.get(item.woo_id)
            answer = candidates.pop(0) if candidates else None
        if answer is None:
            out.append((item.index, ChangeResult(external_id, ok=False, retryable=True,
                                                 error="the shop's batch answer has no entry for this item")))
        elif isinstance(answer.get("error"), Mapping):
            message, retryable = _item_error(answer["error"])
            out.append((item.index, ChangeResult(external_id, ok=False, error=message, retryable=retryable)))
        elif mismatch := _shows(item, answer, batch.allow_shop_sales):
            out.append((item.index, ChangeResult(external_id, ok=False, error=mismatch, retryable=False)))
        else:
            out.append((item.index, ChangeResult(external_id, ok=True)))
    return out
