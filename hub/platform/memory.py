"""What a connector learns from its vendor and would otherwise ask again after every restart (the EAN
behind an unsigned Allegro offer: one or two requests per offer). Rows per (connector, topic, key),
each with when it was learnt; the connector decides how long a fact stays true."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select

from hub.platform.db import insert_for, transaction
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

    def recall(self, topic: str) -> dict[str, Learnt]:
        """Everything learnt under ``topic`` (the connector keeps it bounded: see ``forget_except``)."""
        with transaction(self.engine) as session:
            return {key: Learnt(value, at) for key, value, at in session.execute(
                select(ConnectorMemory.key, ConnectorMemory.value, ConnectorMemory.learnt_at).where(
                    ConnectorMemory.connector == self.connector, ConnectorMemory.topic == topic)).all()}

    def remember(self, topic: str, facts: Mapping[str, Learnt]) -> None:
        """Insert or update, in bulk: two processes learning one fact at once end with one row."""
        if not facts:
            return
        rows = [{"connector": self.connector, "topic": topic, "key": key, "value": fact.value,
                 "learnt_at": fact.at} for key, fact in facts.items()]
        with transaction(self.engine) as session:
            insert = insert_for(session)(ConnectorMemory)
            session.execute(insert.on_conflict_do_update(
                index_elements=["connector", "topic", "key"],
                set_={"value": insert.excluded.value, "learnt_at": insert.excluded.learnt_at}), rows)

    def forget_except(self, topic: str, keep: Collection[str]) -> int:
        """Drop what no longer matters (an offer gone or signed since): the store stays as big as the
        vendor's current facts."""
        with transaction(self.engine) as session:
            stored = set(session.execute(select(ConnectorMemory.key).where(
                ConnectorMemory.connector == self.connector, ConnectorMemory.topic == topic)).scalars())
            gone = sorted(stored - set(keep))
            for start in range(0, len(gone), _CHUNK):
                session.execute(delete(ConnectorMemory).where(
                    ConnectorMemory.connector == self.connector, ConnectorMemory.topic == topic,
                    ConnectorMemory.key.in_(gone[start:start + _CHUNK])))
        return len(gone)
