"""Which offers are not on sale (ENDED or INACTIVE): a zero quantity ends an offer that is on sale, and a
restock activates an ended one again. Every hub process pushes to the same account, so what one learns
(it ended an offer) the others must know before their next push, or a restock sent by another process
sets a quantity on an ended offer and leaves it off sale. The facts live in the connector's memory in
the database, each with when it was learnt; a newer fact wins; a full read of the account's offers
replaces them, except facts learnt while it was reading. Without a database (unit tests of the client
alone) they live in this process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping
from datetime import datetime

from hub.kernel.clock import utcnow
from hub.platform.memory import Learnt, Memory

TOPIC = "not_on_sale"


class OfferStatuses:
    """Not-on-sale offers by id; ``None`` in the store means "on sale since" (a tombstone, so an older
    read cannot put back an offer another process has just activated)."""

    def __init__(self, memory: Memory | None, max_age: float, clock: Callable[[], float]) -> None:
        self._memory = memory
        self._max_age = max_age
        self._clock = clock
        self._local: dict[str, str] = {}
        self._read_at: float | None = None
        self._lock = threading.Lock()

    def due(self) -> bool:
        """A full read is due: never read in this process, or longer ago than ``status_max_age``."""
        with self._lock:
            return self._read_at is None or self._clock() - self._read_at >= self._max_age

    def replace(self, statuses: Mapping[str, str], started: float, started_wall: datetime) -> None:
        """A complete read of the account that started at ``started`` (monotonic) / ``started_wall``."""
        with self._lock:
            self._local = dict(statuses)
            self._read_at = started
        if self._memory is not None:
            self._memory.remember(TOPIC, {o: Learnt(s, started_wall) for o, s in statuses.items()}, newer_only=True)
            self._memory.forget_except(TOPIC, statuses, learnt_before=started_wall)

    def of(self, offer_ids: Collection[str]) -> dict[str, str]:
        """The not-on-sale status of those of ``offer_ids`` that are not on sale, as all processes know it."""
        if self._memory is None:
            with self._lock:
                return {o: self._local[o] for o in offer_ids if o in self._local}
        return {o: fact.value for o, fact in self._memory.recall(TOPIC, offer_ids).items() if fact.value}

    def mark(self, offer_ids: Collection[str], status: str | None) -> None:
        """What our own publication command did: ``status`` ENDED, or ``None`` for back on sale."""
        if not offer_ids:
            return
        with self._lock:
            for offer_id in offer_ids:
                if status is None:
                    self._local.pop(offer_id, None)
                else:
                    self._local[offer_id] = status
        if self._memory is not None:
            now = utcnow()
            self._memory.remember(TOPIC, {o: Learnt(status, now) for o in offer_ids}, newer_only=True)
