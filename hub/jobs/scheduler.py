"""Periodic jobs from the config, fired by exactly one process: the leader.

Leadership is a PostgreSQL session advisory lock held on a dedicated
connection (it goes away with the process), or on SQLite an exclusive file
lock beside the database file. Firing enqueues a job whose idempotency key
names the schedule and the time slot, so even two leaders for a moment, or a
restart within a slot, enqueue each periodic job once per interval.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Connection, Engine, text

from hub.jobs.models import ScheduleRun
from hub.jobs.queue import enqueue
from hub.kernel.clock import utcnow
from hub.platform.config import ScheduleEntry, SchedulerSettings
from hub.platform.db import transaction, upsert
from hub.platform.logs import get_logger

log = get_logger("hub.jobs.scheduler")

ADVISORY_KEY = 0x6875625F7363  # "hub_sc": one schedule per database
# threads the ticks run on (APScheduler's default, named so a process's thread count has a known ceiling):
# a tick only enqueues, but one waiting for SQLite's write lock must not hold up the others
TICK_THREADS = 10


class Leadership(Protocol):
    @property
    def is_leader(self) -> bool: ...

    def poll(self) -> bool:
        """Try to become (or check we still are) the leader; returns is_leader."""

    def release(self) -> None: ...


class PostgresLeadership:
    def __init__(self, engine: Engine, key: int = ADVISORY_KEY):
        self._engine = engine
        self._key = key
        self._conn: Connection | None = None
        self._leader = False
        self._lock = threading.Lock()

    @property
    def is_leader(self) -> bool:
        return self._leader

    def poll(self) -> bool:
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                if self._leader:
                    self._conn.execute(text("SELECT 1"))  # the lock lives as long as this session
                else:
                    got = self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}).scalar()
                    self._leader = bool(got)
            except Exception as exc:
                if self._leader:
                    log.error("lost the scheduler lock's connection; stepping down", error=str(exc))
                self._leader = False
                self._drop()
            return self._leader

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except Exception:
                pass
            self._conn = None

    def release(self) -> None:
        with self._lock:
            if self._conn is not None and self._leader:
                with contextlib.suppress(Exception):
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            self._leader = False
            self._drop()


class FileLeadership:
    def __init__(self, path: Path):
        self._path = path
        self._fd: int | None = None

    @property
    def is_leader(self) -> bool:
        return self._fd is not None

    def poll(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class AlwaysLeader:
    """For an in-memory SQLite database: only this process can see it."""

    is_leader = True

    def poll(self) -> bool:
        return True

    def release(self) -> None:
        pass


def leadership_for(engine: Engine) -> Leadership:
    if engine.dialect.name == "postgresql":
        return PostgresLeadership(engine)
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return AlwaysLeader()
    return FileLeadership(Path(database + ".leader"))


def slot_key(name: str, every: float, now: datetime) -> str:
    slot = math.floor(now.timestamp() / every)
    return f"schedule:{name}:{slot}"


def fire(engine: Engine, name: str, entry: ScheduleEntry, *, by: str, key: str | None = None) -> int:
    """Enqueue one run of a periodic job and record it; returns the job id."""
    now = utcnow()
    with transaction(engine) as session:
        # a job about one connector says so: its log lines, health and login holds follow it
        connector = entry.payload.get("channel") or entry.payload.get("erp")
        connector = connector if isinstance(connector, str) else None
        # one run per kind and connector at a time (two schedules may share both: erp.poll and a full
        # erp.poll of one ERP read the same feed); a slot whose previous run is open is skipped
        job = enqueue(
            session, entry.job, dict(entry.payload), key=key or slot_key(name, entry.every, now),
            priority=entry.priority, connector=connector, exclusive=f"{entry.job}:{connector or '*'}",
        )
        values = {"name": name, "last_fired_at": now, "last_job_id": job.id, "fired_by": by}
        upsert(session, ScheduleRun, values, ["name"])
    if job.created:
        log.info("periodic job enqueued", schedule=name, job_id=job.id, kind=entry.job)
    else:
        log.debug("periodic job skipped: its previous run is still open", schedule=name, open_job_id=job.id)
    return job.id


def fire_all_once(engine: Engine, schedule: dict[str, ScheduleEntry], *, by: str) -> list[int]:
    run = uuid.uuid4().hex[:12]
    return [
        fire(engine, name, entry, by=by, key=f"schedule:{name}:once:{run}")
        for name, entry in sorted(schedule.items())
        if entry.enabled
    ]


class Scheduler:
    def __init__(
        self,
        engine: Engine,
        schedule: dict[str, ScheduleEntry],
        settings: SchedulerSettings,
        *,
        name: str,
        leadership: Leadership | None = None,
        on_fired: Callable[[], None] | None = None,
    ):
        self.engine = engine
        self.schedule = {n: e for n, e in schedule.items() if e.enabled}
        self.settings = settings
        self.name = name
        self.leadership = leadership or leadership_for(engine)
        self.on_fired = on_fired
        self._aps = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1},
                                        executors={"default": ThreadPoolExecutor(TICK_THREADS)})
        self._was_leader = False

    @property
    def is_leader(self) -> bool:
        return self.leadership.is_leader

    def start(self) -> None:
        now = utcnow()
        self._check_leadership()
        self._aps.add_job(
            self._check_leadership, IntervalTrigger(seconds=self.settings.leader_poll),
            id="leader-poll", next_run_time=now,
        )
        for name, entry in self.schedule.items():
            self._aps.add_job(
                self._tick, IntervalTrigger(seconds=entry.every), args=(name, entry), id=f"schedule:{name}",
                next_run_time=now, misfire_grace_time=max(1, int(entry.every)),
            )
        self._aps.start()

    def stop(self) -> None:
        if self._aps.running:
            self._aps.shutdown(wait=True)
        self.leadership.release()
        self._was_leader = False

    def _check_leadership(self) -> None:
        leader = self.leadership.poll()
        if leader and not self._was_leader:
            log.info("this process now runs the schedule", process=self.name, jobs=sorted(self.schedule))
            for name, entry in self.schedule.items():  # catch up at once instead of at the next tick
                self._tick(name, entry)
        elif self._was_leader and not leader:
            log.warning("this process no longer runs the schedule", process=self.name)
        self._was_leader = leader

    def _tick(self, name: str, entry: ScheduleEntry) -> Any:
        if not self.leadership.is_leader:
            return None
        try:
            job_id = fire(self.engine, name, entry, by=self.name)
        except Exception as exc:
            log.error("could not enqueue periodic job", schedule=name, error=str(exc))
            return None
        if self.on_fired:
            self.on_fired()
        return job_id
