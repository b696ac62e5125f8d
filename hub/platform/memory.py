"""What a connector learns from its vendor and would otherwise ask again after every restart, or what
its other processes must know too (each connector names its topics). Rows per (connector, topic,
key), each with when it was learnt; the connector decides how long a fact stays true."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select

from hub.platform.db import insert_for, standalone, transaction
from hub.platform.schema import ConnectorMemory

_CHUNK = 1000


@dataclass(frozen=True)
class Learnt:
    value: Any
    at: datetime


class Memory:
    """One connector's store; every call is its own short transaction."""

    def __init__(self, engine: Engine, connector: str) -> None:
        self.engine = engine
        self.connector = connector

    def recall(self, topic: str, keys: Collection[str] | None = None) -> dict[str, Learnt]:
        """Everything learnt under ``topic`` (the connector keeps it bounded: see ``forget_except``),
        or only what is known of ``keys``."""
        query = select(ConnectorMemory.key, ConnectorMemory.value, ConnectorMemory.learnt_at).where(
            ConnectorMemory.connector == self.connector, ConnectorMemory.topic == topic)
        with transaction(self.engine) as session:
            if keys is None:
                rows = session.execute(query).all()
            else:
                wanted = sorted(set(keys))
                rows = [row for start in range(0, len(wanted), _CHUNK) for row in session.execute(
                    query.where(ConnectorMemory.key.in_(wanted[start:start + _CHUNK]))).all()]
        return {key: Learnt(value, at) for key, value, at in rows}

    def remember(self, topic: str, facts: Mapping[str, Learnt], *, newer_only: bool = False) -> None:
        """Insert or update, in bulk: two processes learning one fact at once end with one row. With
        ``newer_only`` a fact learnt earlier than the stored one does not replace it (a slow read that
        started before another process's change)."""
        if not facts:
            return
        # in key order: two processes upserting overlapping facts lock the rows in the same order
        rows = [{"connector": self.connector, "topic": topic, "key": key, "value": fact.value,
                 "learnt_at": fact.at} for key, fact in sorted(facts.items())]
        with transaction(standalone(self.engine)) as session:  # one statement: no BEGIN/COMMIT round trips
            insert = insert_for(session)(ConnectorMemory)
            session.execute(insert.on_conflict_do_update(
                index_elements=["connector", "topic", "key"],
                set_={"value": insert.excluded.value, "learnt_at": insert.excluded.learnt_at},
                where=(ConnectorMemory.learnt_at < insert.excluded.learnt_at) if newer_only else None), rows)

    def forget_except(self, topic: str, keep: Collection[str], *, learnt_before: datetime | None = None) -> int:
        """Drop what no longer matters (an offer gone or signed since): the store stays as big as the
        vendor's current facts. With ``learnt_before``, facts learnt since then stay (another process
        learnt them while this one was reading)."""
        with transaction(self.engine) as session:
            query = select(ConnectorMemory.key).where(
                ConnectorMemory.connector == self.connector, ConnectorMemory.topic == topic)
            if learnt_before is not None:
                query = query.where(ConnectorMemory.learnt_at < learnt_before)
            gone = sorted(set(session.execute(query).scalars()) - set(keep))
            for start in range(0, len(gone), _CHUNK):
                stmt = delete(ConnectorMemory).where(
                    ConnectorMemory.connector == self.connector, ConnectorMemory.topic == topic,
                    ConnectorMemory.key.in_(gone[start:start + _CHUNK]))
                if learnt_before is not None:  # and not learnt again since our select
                    stmt = stmt.where(ConnectorMemory.learnt_at < learnt_before)
                session.execute(stmt)
        return len(gone)
