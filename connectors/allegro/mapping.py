"""Pure translation between Allegro payloads and hub.kernel.ports types: no I/O, no clock.

Allegro's batch commands apply ONE modification (one fixed price, one fixed
quantity, one publication action) to up to 1,000 offers. A batch of listing
changes therefore becomes one command per distinct target value and per 1,000
offers; everything here is deterministic so that a retried job rebuilds the
very same commands (and so the very same command ids).
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from stdnum import ean as gtin
from stdnum.exceptions import ValidationError

from hub.kernel.ports.channel import Listing, ListingChange

PUBLIC_MEDIA_TYPE = "application/vnd.allegro.public.v1+json"
BETA_MEDIA_TYPE = "application/vnd.allegro.beta.v1+json"

MAX_OFFERS_PER_COMMAND = 1000  # OfferCriterium.offers: "You can add up to 1000 offers."
MAX_TASKS_PAGE = 1000  # GET .../tasks: limit <= 1000 (offset <= 999, so one page covers one command)
MAX_OFFERS_PAGE = 1000  # GET /sale/offers: limit <= 1000

# Fixed namespace for command ids: uuid5(NAMESPACE, ...) gives the same id on every attempt of a job.
COMMAND_NAMESPACE = uuid.UUID("5d1f6a8e-2b7c-4e59-9a43-0c8f1e7b2a61")

SELLABLE_STATUSES = frozenset({"ACTIVE", "ACTIVATING"})

# Task error codes we treat as "try the offer again later" (the vendor's side was busy or broken).
# The vendor documents no list; anything else (validation, missing offer) is the seller's to fix.
TRANSIENT_TASK_CODES = frozenset({
    "INTERNAL_SERVER_ERROR", "InternalServerErrorException", "SERVICE_UNAVAILABLE", "ServiceUnavailableException",
    "TOO_MANY_REQUESTS", "TooManyRequestsException", "OFFER_LOCKED", "CONCURRENT_MODIFICATION", "TIMEOUT",
})


class CommandKind(StrEnum):
    PRICE = "price"
    QUANTITY = "quantity"
    PUBLICATION = "publication"


COMMAND_PATHS: Mapping[CommandKind, str] = {
    CommandKind.PRICE: "/sale/offer-price-change-commands",
    CommandKind.QUANTITY: "/sale/offer-quantity-change-commands",
    CommandKind.PUBLICATION: "/sale/offer-publication-commands",
}


@dataclass(frozen=True)
class Command:
    """One batch command to send: its kind, the value group it sets, its chunk and its offers."""

    kind: CommandKind
    group: str  # the value it sets, e.g. "PLN 12.30", "5", "END"
    chunk: int  # 0-based chunk within the group
    offer_ids: tuple[str, ...]
    body: dict[str, Any]

    @property
    def path(self) -> str:
        return COMMAND_PATHS[self.kind]

    def command_id(self, idempotency_key: str) -> str:
        """The id is derived, never random: the job's key (stored before any call) plus what the
        command contains, so a retry finds the command an earlier attempt sent."""
        digest = hashlib.sha256("\n".join(self.offer_ids).encode()).hexdigest()[:16]
        name = f"{idempotency_key}:{self.kind}:{self.group}:{self.chunk}:{digest}"
        return str(uuid.uuid5(COMMAND_NAMESPACE, name))


@dataclass(frozen=True)
class TaskFailure:
    offer_id: str
    error: str
    retryable: bool


# --- money ------------------------------------------------------------------------------


def format_amount(amount: Decimal) -> str:
    """Allegro amounts are strings with at most two decimals; rounding is the spine's job, so an
    amount that would need rounding is refused rather than silently changed."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ValueError(f"price {amount!r} is not a finite Decimal")
    if amount <= 0:
        raise ValueError(f"price {amount} must be greater than 0")
    cents = amount.quantize(Decimal("0.01"))
    if cents != amount:
        raise ValueError(f"price {amount} has more than two decimal places")
    return f"{cents:f}"


def parse_amount(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


# --- offers -> listings -----------------------------------------------------------------


def offer_status(offer: Mapping[str, Any]) -> str | None:
    return (offer.get("publication") or {}).get("status")


def listing_from_offer(offer: Mapping[str, Any]) -> Listing:
    """An OfferListingDto as the hub sees it.

    Only ACTIVE/ACTIVATING offers can be bought, so an ENDED or INACTIVE offer reports quantity 0
    (its stored stock is not on sale). The hub ends an offer to show 0, so reading it back must give 0.
    The offer list carries no EAN (it lives on the offer's product): the channel fills it in for
    unsigned offers from ``ean_from_product_offer`` / ``ean_from_product``.
    """
    status = offer_status(offer)
    sellable = status in SELLABLE_STATUSES
    price = ((offer.get("sellingMode") or {}).get("price")) or {}
    external = (offer.get("external") or {}).get("id")
    stock = int((offer.get("stock") or {}).get("available") or 0)
    return Listing(
        external_id=str(offer["id"]),
        sku=external or None,
        ean=None,
        quantity=stock if sellable else 0,
        price_gross=parse_amount(price.get("amount")),
        currency=price.get("currency") or "PLN",
        active=sellable,
        stock=None if sellable else stock,
    )


# --- product-offers / products -> EAN -----------------------------------------------------
#
# GET /sale/product-offers/{offerId} (SaleProductOfferResponseV1) has productSet[].product
# (ProductOfferResponse: id, publication) with parameters[] (ParameterProductOfferResponse: id, name,
# values, valuesIds, rangeValue): no flag there says which parameter is a GTIN, so only the catalogue's
# "EAN (GTIN)" parameter is recognised, by its id. GET /sale/products/{productId} (SaleProductDto)
# flags GTIN parameters itself: parameters[] (ProductParameterDto) with options.isGTIN.

GTIN_PARAMETER_ID = "225693"  # the catalogue's "EAN (GTIN)" parameter (the vendor's id; not in swagger.yaml)


@dataclass(frozen=True)
class OfferEan:
    """What a product-offer tells about its EAN: the EAN, or the product to read it from (or neither)."""

    ean: str | None = None
    product_id: str | None = None


def normalize_ean(value: Any) -> str | None:
    """A GTIN-8/12/13/14 in the compact form the catalogue stores (hub.catalog.feed_rules); None if invalid."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return str(gtin.validate(value))
    except ValidationError:
        return None


def _first_ean(parameters: Any, is_gtin: Callable[[Mapping[str, Any]], bool]) -> str | None:
    if not isinstance(parameters, list):
        return None
    for parameter in parameters:
        if isinstance(parameter, Mapping) and is_gtin(parameter):
            for value in parameter.get("values") or []:
                found = normalize_ean(value)
                if found:
                    return found
    return None


def _single_product(product_offer: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The offer's product when the offer sells exactly one unit of exactly one product.

    A set (several products) or a multipack (productSet[].quantity.value > 1) is not one unit of one
    EAN: binding it by a component's EAN would sell the bundle at the component's stock."""
    product_set = product_offer.get("productSet")
    if not isinstance(product_set, list) or len(product_set) != 1 or not isinstance(product_set[0], Mapping):
        return None
    element = product_set[0]
    units = (element.get("quantity") or {}).get("value")
    if units is not None and units != 1:
        return None
    product = element.get("product")
    return product if isinstance(product, Mapping) else None


def ean_from_product_offer(product_offer: Mapping[str, Any]) -> OfferEan:
    """The EAN of a SaleProductOfferResponseV1: its product's "EAN (GTIN)" parameter; failing that the
    product id, whose SaleProductDto flags its GTINs (``ean_from_product``)."""
    product = _single_product(product_offer)
    if product is None:
        return OfferEan()
    found = _first_ean(product.get("parameters"), lambda p: str(p.get("id")) == GTIN_PARAMETER_ID)
    if found:
        return OfferEan(ean=found)
    product_id = product.get("id")
    return OfferEan(product_id=product_id if isinstance(product_id, str) and product_id else None)


def ean_from_product(product: Mapping[str, Any]) -> str | None:
    """The first valid GTIN of a SaleProductDto: parameters[] flagged options.isGTIN (or the
    "EAN (GTIN)" parameter by id)."""
    return _first_ean(product.get("parameters"), lambda p: (p.get("options") or {}).get("isGTIN") is True
                      or str(p.get("id")) == GTIN_PARAMETER_ID)


# --- changes -> commands ----------------------------------------------------------------


def _criteria(offer_ids: Sequence[str]) -> list[dict[str, Any]]:
    return [{"type": "CONTAINS_OFFERS", "offers": [{"id": offer_id} for offer_id in offer_ids]}]


def _chunks(offer_ids: Sequence[str], size: int = MAX_OFFERS_PER_COMMAND) -> list[tuple[str, ...]]:
    return [tuple(offer_ids[i:i + size]) for i in range(0, len(offer_ids), size)]


def _last_per_offer(changes: Iterable[ListingChange]) -> dict[str, ListingChange]:
    """One change per offer (the last one wins), so an offer never lands in two groups."""
    latest: dict[str, ListingChange] = {}
    for change in changes:
        latest[change.external_id] = change
    return latest


def price_commands(changes: Iterable[ListingChange]) -> list[Command]:
    """FIXED_PRICE commands, one per (currency, amount) and per 1,000 offers, in a fixed order."""
    groups: dict[tuple[str, Decimal], list[str]] = defaultdict(list)
    for offer_id, change in _last_per_offer(changes).items():
        if change.price_gross is not None:
            format_amount(change.price_gross)
            groups[(change.currency, change.price_gross)].append(offer_id)
    commands = []
    for (currency, amount), offer_ids in sorted(groups.items()):
        text = format_amount(amount)
        for chunk_no, chunk in enumerate(_chunks(sorted(offer_ids))):
            body = {
                "modification": {"type": "FIXED_PRICE", "price": {"amount": text, "currency": currency}},
                "offerCriteria": _criteria(chunk),
            }
            commands.append(Command(CommandKind.PRICE, f"{currency} {text}", chunk_no, chunk, body))
    return commands


@dataclass(frozen=True)
class PricePatch:
    """One offer's price by PATCH /sale/product-offers/{offerId} (editProductOffers)."""

    offer_id: str
    amount: Decimal
    currency: str

    def body(self) -> dict[str, Any]:
        return {"sellingMode": {"price": {"amount": format_amount(self.amount), "currency": self.currency}}}


# What a price costs in requests: a command its PUT and at least one read of its status (its tasks
# too when one fails), for up to 1,000 offers; a PATCH one request for one offer.
COMMAND_REQUESTS = 2
PATCH_REQUESTS = 1


def price_plan(changes: Iterable[ListingChange]) -> tuple[list[Command], list[PricePatch]]:
    """The prices as whichever costs fewer requests: a command for each (currency, amount) and 1,000
    offers that several offers share, a PATCH for an offer whose price no other offer of the batch has
    (10,000 offers at 10,000 distinct prices: 10,000 PATCHes instead of 10,000 commands and their
    status reads)."""
    commands: list[Command] = []
    patches: list[PricePatch] = []
    for command in price_commands(changes):
        if len(command.offer_ids) * PATCH_REQUESTS < COMMAND_REQUESTS:
            price = command.body["modification"]["price"]
            patches.append(PricePatch(command.offer_ids[0], Decimal(price["amount"]), price["currency"]))
        else:
            commands.append(command)
    return commands, patches


def price_request_floor(changes: Iterable[ListingChange]) -> int:
    """The fewest writes the prices can take: one per distinct (currency, amount), as no request
    carries two prices."""
    return len({(c.currency, c.price_gross) for c in _last_per_offer(changes).values() if c.price_gross is not None})


def quantity_commands(changes: Iterable[ListingChange]) -> list[Command]:
    """FIXED quantity commands for quantities above 0 (the spec: FIXED takes "a new stock
    quantity > 0"); zero is reached by ending the offer instead."""
    groups: dict[int, list[str]] = defaultdict(list)
    for offer_id, change in _last_per_offer(changes).items():
        if change.quantity is not None and change.quantity > 0:
            groups[change.quantity].append(offer_id)
    commands = []
    for value, offer_ids in sorted(groups.items()):
        for chunk_no, chunk in enumerate(_chunks(sorted(offer_ids))):
            body = {"modification": {"changeType": "FIXED", "value": value}, "offerCriteria": _criteria(chunk)}
            commands.append(Command(CommandKind.QUANTITY, str(value), chunk_no, chunk, body))
    return commands


def publication_commands(offer_ids: Iterable[str], action: str) -> list[Command]:
    """END or ACTIVATE commands for the given offers, 1,000 per command."""
    if action not in ("END", "ACTIVATE"):
        raise ValueError(f"unknown publication action {action!r}")
    commands = []
    for chunk_no, chunk in enumerate(_chunks(sorted(set(offer_ids)))):
        body = {"publication": {"action": action}, "offerCriteria": _criteria(chunk)}
        commands.append(Command(CommandKind.PUBLICATION, action, chunk_no, chunk, body))
    return commands


# --- reports -> results -----------------------------------------------------------------


def report_done(report: Mapping[str, Any]) -> bool:
    """A GeneralReport is final when every scheduled task succeeded or failed.

    Right after PUT the counts are all zero (the vendor has not scheduled the tasks yet), so a
    total of 0 means "not started", never "done".
    """
    counts = report.get("taskCount") or {}
    total = int(counts.get("total") or 0)
    finished = int(counts.get("success") or 0) + int(counts.get("failed") or 0)
    return total > 0 and finished >= total


def report_failed(report: Mapping[str, Any]) -> int:
    return int((report.get("taskCount") or {}).get("failed") or 0)


def describe_errors(errors: Iterable[Mapping[str, Any]]) -> str:
    parts = []
    for error in errors:
        code = error.get("code") or "ERROR"
        text = error.get("userMessage") or error.get("message") or ""
        parts.append(f"{code}: {text}" if text else code)
    return "; ".join(parts)


def task_failures(task_report: Mapping[str, Any]) -> dict[str, TaskFailure]:
    """Failed tasks of a TaskReport by offer id. Tasks still NEW count as retryable failures."""
    failures: dict[str, TaskFailure] = {}
    for task in task_report.get("tasks") or []:
        status = task.get("status")
        if status == "SUCCESS":
            continue
        offer_id = str((task.get("offer") or {}).get("id"))
        errors = task.get("errors") or []
        text = describe_errors(errors) or task.get("message") or f"task {status}"
        if task.get("message") and errors and task["message"] not in text:
            text = f"{task['message']} ({text})"
        codes = {e.get("code") for e in errors}
        retryable = status != "FAIL" or bool(codes & TRANSIENT_TASK_CODES)
        failures[offer_id] = TaskFailure(offer_id, text, retryable)
    return failures


def api_error_text(body: Any) -> str | None:
    """The ``errors[]`` of an error body as one line (None when the body has none)."""
    if isinstance(body, Mapping) and isinstance(body.get("errors"), list):
        return describe_errors(e for e in body["errors"] if isinstance(e, Mapping)) or None
    return None
