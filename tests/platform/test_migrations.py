from sqlalchemy import Engine, inspect

from hub.app.tables import metadata as _metadata
from hub.platform import db


def _table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_upgrade_downgrade_upgrade(empty_db_url: str) -> None:
    engine: Engine = db.make_engine(empty_db_url)
    try:
        assert db.schema_state(engine).current is None
        db.upgrade(engine)
        assert db.schema_state(engine).up_to_date
        assert set(_metadata.tables) <= _table_names(engine)
        db.downgrade(engine, "base")
        assert db.schema_state(engine).current is None
        assert not (set(_metadata.tables) & _table_names(engine))
        db.upgrade(engine)
        assert db.schema_state(engine).up_to_date
        assert set(_metadata.tables) <= _table_names(engine)
    finally:
        engine.dispose()
