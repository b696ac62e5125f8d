"""Alembic environment: the engine comes from the hub (hub init, tests), or from -x url=... on the CLI."""

from __future__ import annotations

from sqlalchemy import Engine

from alembic import context
from hub.app.tables import metadata
from hub.platform.db import make_engine

config = context.config
target_metadata = metadata


def _engine() -> Engine:
    engine = config.attributes.get("engine")
    if engine is not None:
        return engine
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("alembic: pass the database with -x url=sqlite:///hub.db (or use `hub init`)")
    return make_engine(url)


def run_offline() -> None:
    url = context.get_x_argument(as_dictionary=True).get("url") or "sqlite:///hub.db"
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = _engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
