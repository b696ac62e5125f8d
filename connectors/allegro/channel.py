"""The SalesChannel port for one Allegro account: listings by paging, pushes by batch commands.
(Orders, returns and refunds: orders.py; tracking numbers: tracking.py; both mixed in.)

A push turns listing changes into price, quantity and publication commands
(mapping.py) whose ids derive from the job's idempotency key, sends each one
unless an earlier attempt already did, and polls the reports. Every attempt
first GETs the job's first command: a 404 proves no earlier attempt sent
anything (commands go out strictly one after another, in a fixed order), so
the rest are PUT without a GET each; otherwise every command is looked up
before it is sent. Either way a PUT answered 409 ("command id already used")
means the command exists and is only polled, never sent twice.

Listings carry the seller's signature (external.id); an unsigned offer is bound by EAN instead,
which the offer list does not carry: it is read from GET /sale/product-offers/{offerId} (and, when
that names only the product, GET /sale/products/{productId}) and remembered per offer, so signed
offers cost nothing and periodic reads do not repeat the lookups.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from connectors.allegro.auth import AllegroAuth
from connectors.allegro.client import AllegroClient, AllegroHttp, CommandRejected, errors_of
from connectors.allegro.mapping import (
    MAX_OFFERS_PAGE,
    Command,
    CommandKind,
    PricePatch,
    TaskFailure,
    ean_from_product,
    ean_from_product_offer,
    format_amount,
    listing_from_offer,
    offer_status,
    price_plan,
    price_request_floor,
    publication_commands,
    quantity_commands,
    report_done,
    report_failed,
    task_failures,
)
from connectors.allegro.offer_statuses import OfferStatuses
from connectors.allegro.options import AllegroOptions
from connectors.allegro.orders import AllegroOrders
from connectors.allegro.tracking import AllegroTracking
from hub.kernel.clock import utcnow
from hub.kernel.errors import LoginNeeded, PermanentError, RetryableError
from hub.kernel.ports.channel import ChangeResult, Listing, ListingChange
from hub.platform.memory import Learnt

if TYPE_CHECKING:
    from hub.platform.connectors import Services

NOT_SELLABLE = ("ENDED", "INACTIVE")


@dataclass
class _EanRead:
    """EAN lookups during one listings() read."""

    budget: int
    stopped: bool = False  # the vendor throttled or failed: no more lookups in this read
    looked_up: int = 0
    found: int = 0
    cached: int = 0
    failed: int = 0


_EAN_TOPIC = "offer-ean"  # offer id -> the EAN of its product (None: it has none)


class AllegroChannel(AllegroOrders, AllegroTracking):
    """hub.kernel.ports.SalesChannel, OrderChannel, ReturnsChannel and TrackingChannel for one Allegro account
    (one connector name = one seller login)."""

    def __init__(
        self,
        name: str,
        options: AllegroOptions,
        services: Services,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.name = name
        self.options = options
        self.log = services.log
        self._sleep = sleep
        self._clock = clock
        self.http = AllegroHttp(
            connector=name, throttle=services.throttle, log=services.log, timeout=options.request_timeout,
            attempts=options.http_attempts, backoff=options.retry_backoff, block_seconds=options.rate_limit_block,
            transport=services.transport, sleep=sleep,
        )
        self.auth = AllegroAuth(
            account=name, http=self.http, tokens=services.tokens, auth_base=options.auth_base,
            client_id=options.client_id, client_secret=options.client_secret.get(), sleep=sleep,
        )
        self.client = AllegroClient(self.http, self.auth, options.api_base)
        # offers that are not on sale (ENDED / INACTIVE): which zero-quantity offers to end and
        # which restocked offers to activate again. Learnt from listings(), a status scan and our
        # own publication commands, and shared with the other processes through the database.
        self._offer_statuses = OfferStatuses(services.memory, options.status_max_age, self._clock)
        # EANs of unsigned offers by offer id: (EAN or None, when it was read)
        self._eans: dict[str, tuple[str | None, float]] = {}
        self._ean_lock = threading.Lock()
        # and in the database (hub.platform.memory), so a restart does not look them all up again
        self._memory = services.memory
        self._eans_recalled = False
        self._init_orders()
        self._init_tracking()

    def close(self) -> None:
        self.http.close()

    # --- listings ----------------------------------------------------------------------

    def _pages(self, statuses: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
        """Offers page by page (limit 1000); offsets shift if offers appear meanwhile, so ids are deduplicated."""
        offset = 0
        seen: set[str] = set()
        while True:
            page = self.client.offers_page(offset=offset, statuses=statuses)
            offers = page.get("offers") or []
            for offer in offers:
                offer_id = str(offer.get("id"))
                if offer_id not in seen:
                    seen.add(offer_id)
                    yield offer
            offset += len(offers)
            total = page.get("totalCount")
            if len(offers) < MAX_OFFERS_PAGE or (isinstance(total, int) and offset >= total):
                return

    def listings(self) -> Iterator[Listing]:
        not_sellable: dict[str, str] = {}
        started, started_wall = self._clock(), utcnow()
        self._recall_eans()
        unsigned: set[str] = set()
        read = _EanRead(budget=self.options.ean_lookups_per_read)
        for offer in self._pages():
            status = offer_status(offer)
            if status in NOT_SELLABLE:
                not_sellable[str(offer["id"])] = status
            listing = listing_from_offer(offer)
            if listing.sku is None:  # unsigned: only an EAN can bind it
                unsigned.add(listing.external_id)
                listing = replace(listing, ean=self._ean(listing.external_id, read))
            yield listing
        self._offer_statuses.replace(not_sellable, started, started_wall)  # a complete read is the freshest
        with self._ean_lock:  # offers gone or signed since need no EAN any more
            self._eans = {o: v for o, v in self._eans.items() if o in unsigned}
            learnt = {o: v for o, v in self._eans.items() if v[1] >= started}
        self._keep_eans(learnt, unsigned)
        if unsigned:
            self.log.info("allegro.ean_lookups", unsigned=len(unsigned), looked_up=read.looked_up,
                          found=read.found, cached=read.cached, failed=read.failed,
                          postponed=len(unsigned) - read.looked_up - read.cached - read.failed)

    def _recall_eans(self) -> None:
        """Once per process: the EANs an earlier process learnt, with their age."""
        if self._memory is None or self._eans_recalled:
            return
        self._eans_recalled = True
        now, wall = self._clock(), utcnow()
        recalled = {offer: (fact.value, now - (wall - fact.at).total_seconds())
                    for offer, fact in self._memory.recall(_EAN_TOPIC).items()}
        with self._ean_lock:
            self._eans = {**recalled, **self._eans}

    def _keep_eans(self, learnt: dict[str, tuple[str | None, float]], unsigned: set[str]) -> None:
        if self._memory is None:
            return
        now, wall = self._clock(), utcnow()
        self._memory.remember(_EAN_TOPIC, {offer: Learnt(ean, wall - timedelta(seconds=now - at))
                                           for offer, (ean, at) in learnt.items()})
        self._memory.forget_except(_EAN_TOPIC, unsigned)

    def _ean(self, offer_id: str, read: _EanRead) -> str | None:
        """The EAN of an unsigned offer: remembered, or read from its product while the read's budget lasts.

        A failed lookup never fails the listing read (the offer just stays unbound until a later read);
        a throttled or failing vendor stops the lookups for the rest of this read."""
        now = self._clock()
        with self._ean_lock:
            known = self._eans.get(offer_id)
        if known is not None and now - known[1] < self.options.ean_max_age:
            read.cached += 1
            return known[0]
        stale = known[0] if known is not None else None
        if read.stopped or read.budget <= 0:
            return stale
        read.budget -= 1
        try:
            product_offer = self.client.product_offer(offer_id)
            if product_offer is None:  # gone between the offer list and the lookup: nothing to remember
                read.failed += 1
                return None
            found = ean_from_product_offer(product_offer)
            ean = found.ean
            if ean is None and found.product_id is not None:  # the offer names its product only
                product = self.client.product(found.product_id)
                ean = ean_from_product(product) if product is not None else None
        except LoginNeeded:
            raise
        except RetryableError as exc:
            read.failed += 1
            read.stopped = True
            self.log.warning("allegro.ean_lookup_stopped", offer_id=offer_id, error=str(exc))
            return stale
        except PermanentError as exc:
            read.failed += 1
            self.log.warning("allegro.ean_lookup_failed", offer_id=offer_id, error=str(exc))
            return stale
        read.looked_up += 1
        read.found += ean is not None
        with self._ean_lock:
            self._eans[offer_id] = (ean, now)
        return ean

    def _statuses(self, offer_ids: Collection[str]) -> dict[str, str]:
        """The not-on-sale status of the offers about to be pushed; the account's list of offers not on
        sale is read again when this process's read is older than ``status_max_age``."""
        if self._offer_statuses.due():
            started, started_wall = self._clock(), utcnow()
            found = {str(o["id"]): offer_status(o) or "ENDED" for o in self._pages(NOT_SELLABLE)}
            self._offer_statuses.replace(found, started, started_wall)
        return self._offer_statuses.of(offer_ids)

    # --- push --------------------------------------------------------------------------

    def push(self, changes: Sequence[ListingChange], *, idempotency_key: str) -> Sequence[ChangeResult]:
        problems: dict[str, list[TaskFailure]] = defaultdict(list)
        valid: list[ListingChange] = []
        for change in changes:
            problem = _invalid(change)
            if problem:
                problems[change.external_id].append(TaskFailure(change.external_id, problem, False))
            else:
                valid.append(change)
        latest = {c.external_id: c for c in valid}
        quantities = {offer_id: c.quantity for offer_id, c in latest.items() if c.quantity is not None}
        statuses = self._statuses(list(quantities)) if quantities else {}

        # phase 1: prices, quantities above 0, and END for offers going to 0 that are still on sale; a
        # price no other offer of the batch shares goes by PATCH (one request, not a command's two)
        sent_before = self.client.sent
        to_end = [o for o, q in quantities.items() if q == 0 and o not in statuses]
        price_cmds, patches = price_plan(valid)
        first = price_cmds + quantity_commands(valid) + publication_commands(to_end, "END")
        failed = self._run(idempotency_key, first) + self._patch_prices(patches)
        for _kind, offer_id, failure in failed:
            problems[offer_id].append(failure)
        failed_keys = {(kind, offer_id) for kind, offer_id, _ in failed}
        failed_qty = {offer_id for kind, offer_id in failed_keys if kind is CommandKind.QUANTITY}
        self._offer_statuses.mark([o for o in to_end if (CommandKind.PUBLICATION, o) not in failed_keys], "ENDED")

        # phase 2: an ended offer restocked above 0 goes back on sale once its stock is set
        to_activate = [o for o, q in quantities.items()
                       if q > 0 and statuses.get(o) == "ENDED" and o not in failed_qty]
        second = publication_commands(to_activate, "ACTIVATE")
        failed_activation = self._run(idempotency_key, second)
        for _kind, offer_id, failure in failed_activation:
            problems[offer_id].append(failure)
        not_activated = {offer_id for _, offer_id, _ in failed_activation}
        self._offer_statuses.mark([o for o in to_activate if o not in not_activated], None)

        for offer_id, q in quantities.items():
            if q > 0 and statuses.get(offer_id) == "INACTIVE" and offer_id not in failed_qty:
                problems[offer_id].append(TaskFailure(
                    offer_id, "the offer is a draft (INACTIVE): its stock was set, but it is not on sale "
                    "until the seller publishes it", False))

        results = []
        for change in changes:
            found = problems.get(change.external_id)
            if not found:
                results.append(ChangeResult(change.external_id, ok=True))
            else:
                results.append(ChangeResult(change.external_id, ok=False, error="; ".join(f.error for f in found),
                                            retryable=all(f.retryable for f in found)))
        self.log.info("allegro.push", changes=len(changes), commands=len(first) + len(second),
                      price_patches=len(patches), requests=self.client.sent - sent_before,
                      price_request_floor=price_request_floor(valid), failed=sum(1 for r in results if not r.ok))
        return results

    def _patch_prices(self, patches: Sequence[PricePatch]) -> list[tuple[CommandKind, str, TaskFailure]]:
        """Each offer's price by PATCH; an edit Allegro accepts for later (202) is polled at its Location
        until done. A PATCH sets an absolute price, so a retry after a lost answer sets the same one."""
        failures: list[tuple[CommandKind, str, TaskFailure]] = []
        accepted: dict[str, str] = {}
        for patch in patches:
            response = self.client.patch_offer(patch.offer_id, patch.body())
            status = response.status_code
            if status == 202 and response.headers.get("Location"):
                accepted[patch.offer_id] = response.headers["Location"]
            elif status == 409:
                failures.append((CommandKind.PRICE, patch.offer_id, TaskFailure(
                    patch.offer_id, "an earlier edit of the offer is still being processed (409)", True)))
            elif status >= 300:
                failures.append((CommandKind.PRICE, patch.offer_id, TaskFailure(
                    patch.offer_id, f"Allegro refused the price {patch.amount} ({status}): "
                    f"{errors_of(response) or response.text[:300]}", False)))
        deadline = self._clock() + self.options.command_timeout
        while accepted:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise RetryableError(f"{len(accepted)} Allegro offer edit(s) still processing after "
                                     f"{self.options.command_timeout:g}s; the retry sends the same prices",
                                     retry_after=self.options.command_poll_interval * 5)
            self._sleep(min(self.options.command_poll_interval, remaining))
            for offer_id, location in list(accepted.items()):
                status = self.client.operation(location).status_code
                if status == 303:
                    del accepted[offer_id]
                elif status == 404:
                    del accepted[offer_id]
                    failures.append((CommandKind.PRICE, offer_id, TaskFailure(
                        offer_id, "Allegro lost track of the price edit (its operation is gone)", True)))
        return failures

    def _run(self, key: str, commands: Sequence[Command]) -> list[tuple[CommandKind, str, TaskFailure]]:
        """Send (at most once each) and wait for the commands; the per-offer failures they report."""
        if not commands:
            return []
        failures: list[tuple[CommandKind, str, TaskFailure]] = []
        ids = [c.command_id(key) for c in commands]
        reports: dict[int, Mapping[str, Any]] = {}
        careful = False
        for i, command in enumerate(commands):
            report = None
            if i == 0 or careful:
                report = self.client.get_command(command.kind, ids[i])
                careful = careful or report is not None
            if report is None:
                try:
                    report = self.client.put_command(command.kind, ids[i], command.body)
                except CommandRejected as exc:
                    failures += [(command.kind, o, TaskFailure(o, str(exc), False)) for o in command.offer_ids]
                    continue
                if report is None:
                    self.log.info("allegro.command_exists", kind=str(command.kind), command_id=ids[i])
                    report = {}
            reports[i] = report

        deadline = self._clock() + self.options.command_timeout
        waiting = sorted(i for i, r in reports.items() if not report_done(r))
        while waiting:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise RetryableError(
                    f"{len(waiting)} Allegro command(s) still processing after {self.options.command_timeout:g}s "
                    f"(e.g. {commands[waiting[0]].kind} {ids[waiting[0]]}); the retry polls the same commands",
                    retry_after=self.options.command_poll_interval * 5,
                )
            self._sleep(min(self.options.command_poll_interval, remaining))
            for i in waiting:
                report = self.client.get_command(commands[i].kind, ids[i])
                if report is not None:  # None: registered but not visible yet; keep waiting
                    reports[i] = report
            waiting = [i for i in waiting if not report_done(reports[i])]

        for i, report in sorted(reports.items()):
            if report_failed(report):  # tasks are read only when something failed
                command = commands[i]
                tasks = self.client.command_tasks(command.kind, ids[i])
                wanted = set(command.offer_ids)
                failures += [(command.kind, f.offer_id, f) for f in task_failures(tasks).values()
                             if f.offer_id in wanted]
        return failures


def _invalid(change: ListingChange) -> str | None:
    """Why a change cannot be sent at all (it fails alone, the rest of the batch goes on)."""
    if change.quantity is not None and change.quantity < 0:
        return f"quantity {change.quantity} is negative"
    if change.price_gross is not None:
        try:
            format_amount(change.price_gross)
        except ValueError as exc:
            return str(exc)
        if len(change.currency) != 3 or not change.currency.isalpha() or not change.currency.isupper():
            return f"currency {change.currency!r} is not an ISO 4217 code"
    return None
