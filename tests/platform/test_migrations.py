from sqlalchemy import Engine

from hub.app.tables import metadata as _metadata
from hub.platform import db


def test_upgrade_downgrade_upgrade(empty_db_url: str) -> None:
    engine: Engine = db.make_engine(empty_db_url)
    try:
        assert db.schema_state(engine).current is None
        db.upgrade(engine)
        assert db.schema_state(engine).up_to_date
        assert set(_metadata.tables) <= db.table_names(engine)
        db.downgrade(engine, "base")
        assert db.schema_state(engine).current is None
        assert not (set(_metadata.tables) & db.table_names(engine))
        db.upgrade(engine)
        assert db.schema_state(engine).up_to_date
        assert set(_metadata.tables) <= db.table_names(engine)
    finally:
        engine.dispose()
