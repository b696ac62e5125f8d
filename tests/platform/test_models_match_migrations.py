"""The models and the migrations describe the same schema: Alembic's autogenerate finds nothing to do."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.schema import CreateIndex

from hub.app.tables import metadata
from hub.platform import db


def _same_sqlite_index(connection: Connection, index: Any) -> bool:
    """SQLite reflects an index on an expression (``priority DESC``) without it, so Alembic reports it
    removed and added again: compare the index's DDL as SQLite stores it with the model's instead."""
    stored = connection.execute(text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :n"),
                                {"n": index.name}).scalar()
    return stored is not None and " ".join(stored.split()) == " ".join(
        str(CreateIndex(index).compile(dialect=connection.dialect)).split())


def test_autogenerate_finds_no_difference(db_url: str) -> None:
    engine = db.make_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                                   "compare_server_default": True})
            differences = compare_metadata(context, metadata)
            if connection.dialect.name == "sqlite":
                model_indexes = {i.name: i for t in metadata.tables.values() for i in t.indexes}
                readded = {d[1].name for d in differences if d[0] == "add_index"}
                same = {name for name in readded if name in model_indexes
                        and _same_sqlite_index(connection, model_indexes[name])}
                differences = [d for d in differences
                               if not (d[0] in ("add_index", "remove_index") and d[1].name in same)]
    finally:
        engine.dispose()
    assert differences == []


def test_every_model_table_is_in_the_comparison() -> None:
    """Each capability's models module is loaded into the compared MetaData."""
    assert {"jobs", "products", "listings", "orders", "reservations", "connector_tokens"} <= set(metadata.tables)
