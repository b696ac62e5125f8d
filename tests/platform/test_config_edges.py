"""Config at its edges: durations and numbers no worker survives, database URLs that are not a hub's
database, booleans and integers written as something else, overrides blamed on the file, a BOM, a
file the hub may not read, and a database a newer hub migrated. Each is refused with one line naming
where the value came from, the key and the value; bad input exits 2, a broken environment 1."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

from hub.cli.main import explain, main
from hub.kernel.errors import EnvironmentFailure
from hub.platform import db
from hub.platform.config import load, parse_duration
from tests.platform.test_config import problems, write

HINT = "expected a duration such as 30s, 5m or 1h"




def only(path: Path | None, environ: dict[str, str] | None = None) -> str:
    (problem,) = problems(path, environ)
    return problem


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return code, lines[0]


# --- 1. durations ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [math.nan, math.inf, "99999999999999999999d", pytest.param(10**400, id="10**400"),
                                 367 * 86400, "367d", pytest.param("1" * 400, id="400 digits")])
def test_a_duration_is_finite_and_at_most_366_days(bad: object) -> None:
    with pytest.raises(ValueError, match=HINT):
        parse_duration(bad)


def test_a_negative_infinity_is_not_a_duration() -> None:
    with pytest.raises(ValueError, match="greater than zero"):
        parse_duration(-math.inf)


def test_a_duration_of_366_days_and_one_millisecond_still_pass() -> None:
    assert parse_duration("366d") == 366 * 86400
    assert parse_duration("1ms") == 0.001
    assert parse_duration(0.5) == 0.5


@pytest.mark.parametrize(("line", "shown", "bound"), [
    ('lease = "99999999999999999999d"', "'99999999999999999999d'", "at most 366d"),
    ("lease = nan", "nan", "not nan"),
    ("backoff_max = inf", "inf", "at most 366d"),
    ("shutdown_timeout = inf", "inf", "at most 366d"),
    ('poll_interval = "400d"', "'400d'", "at most 366d"),
    ('lease = "0.0001ms"', "'0.0001ms'", "at least 1s"),
    ('lease = "999ms"', "'999ms'", "at least 1s"),
])
def test_worker_durations_out_of_bounds(tmp_path: Path, line: str, shown: str, bound: str) -> None:
    path = write(tmp_path, f"[worker]\n{line}\n")
    key = line.split(" ")[0]
    problem = only(path)
    assert problem.startswith(f"{path}: worker.{key} = {shown}: {HINT}"), problem
    assert bound in problem


def test_a_schedule_entry_every_under_a_second(tmp_path: Path) -> None:
    path = write(tmp_path, '[schedule.prune]\njob = "hub.prune_jobs"\nevery = "1ms"\n')
    assert only(path) == f"{path}: schedule.prune.every = '1ms': {HINT}, at least 1s"
    path = write(tmp_path, '[schedule.prune]\njob = "hub.prune_jobs"\nevery = "1s"\n')
    assert load(path, environ={}).settings.schedule["prune"].every == 1.0


def test_sqlite_busy_timeout_under_a_millisecond(tmp_path: Path) -> None:
    # SQLite takes whole milliseconds: 0.5ms would silently become no waiting at all
    path = write(tmp_path, '[database]\nsqlite_busy_timeout = "0.5ms"\n')
    assert only(path) == f"{path}: database.sqlite_busy_timeout = '0.5ms': {HINT}, at least 1ms"


# --- 2. schedule priority ---------------------------------------------------------------------------------

@pytest.mark.parametrize("priority", ["99999999999999999999999", "1001", "-1001"])
def test_a_schedule_priority_fits_the_jobs_table(tmp_path: Path, priority: str) -> None:
    path = write(tmp_path, f'[schedule.prune]\njob = "hub.prune_jobs"\nevery = "1h"\npriority = {priority}\n')
    assert only(path).startswith(f"{path}: schedule.prune.priority = {priority}: ")


def test_a_schedule_priority_in_range(tmp_path: Path) -> None:
    path = write(tmp_path, '[schedule.prune]\njob = "hub.prune_jobs"\nevery = "1h"\npriority = -1000\n')
    assert load(path, environ={}).settings.schedule["prune"].priority == -1000


# --- 3. database URLs -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "why"), [
    ("sqlite-garbage", "not a database URL"),
    ("sqlitefoo:///tmp/x.db", "unknown database driver 'sqlitefoo'"),
    ("postgresql+nodriver://hub@127.0.0.1:1/hub", "unknown database driver 'postgresql+nodriver'"),
    ("postgresql://hub@127.0.0.1:notaport/hub", "the port is not a number"),
    ("postgresql://hub@127.0.0.1:0/hub", "port 0 is not between 1 and 65535"),
    ("postgresql://hub@127.0.0.1:70000/hub", "port 70000 is not between 1 and 65535"),
    ("mysql://x/y", "unknown database driver 'mysql'"),
    ("sqlite://", "an in-memory SQLite database is lost when the command ends"),
    ("sqlite:///:memory:", "an in-memory SQLite database is lost when the command ends"),
    ("sqlite:///", "an in-memory SQLite database is lost when the command ends"),
    ("sqlite:///file:hub?mode=memory&uri=true", "an in-memory SQLite database is lost when the command ends"),
    ("sqlite://dbhost/hub.db", "a SQLite URL names a file, not a server"),
])
def test_database_urls_the_hub_cannot_keep_its_data_in(tmp_path: Path, url: str, why: str) -> None:
    path = write(tmp_path, f'[database]\nurl = "{url}"\n')
    problem = only(path)
    assert problem.startswith(f"{path}: database.url = {url!r}: {why}"), problem
    assert only(path, {"HUB_DATABASE__URL": url}).startswith(f"environment HUB_DATABASE__URL: database.url = {url!r}: ")


@pytest.mark.parametrize("url", ["sqlite:///hub.db", "sqlite+pysqlite:////var/lib/hub/hub.db",
                                 "postgresql://hub@db:5432/hub", "postgresql+psycopg://hub@db/hub",
                                 "postgresql:///hub"])
def test_database_urls_the_hub_takes(tmp_path: Path, url: str) -> None:
    assert load(write(tmp_path, f'[database]\nurl = "{url}"\n'), environ={}).settings.database.url == url


def test_a_bad_url_is_shown_without_its_password(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "postgresql://hub:s3cret@db:notaport/hub"\n')
    problem = only(path)
    assert "s3cret" not in problem
    assert problem == f"{path}: database.url = 'postgresql://hub:***@db:notaport/hub': the port is not a number"


def test_a_password_for_a_sqlite_database(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "sqlite:///hub.db"\npassword = "pa55word"\n')
    assert only(path) == f"{path}: database.password = <hidden>: a SQLite database takes no password " \
        "(it is for a PostgreSQL url)"
    path = write(tmp_path, '[database]\nurl = "postgresql://hub@db/hub"\npassword = "pa55word"\n')
    password = load(path, environ={}).settings.database.password
    assert password is not None and password.get() == "pa55word"


def test_a_refused_url_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "sqlite://"\n')
    assert run(capsys, "--config", str(path), "status") == (
        2, f"hub: {path}: database.url = 'sqlite://': an in-memory SQLite database is lost when the command "
           "ends: name a file, e.g. sqlite:///hub.db")


# --- 4. strict booleans and integers; overrides read as TOML values ------------------------------------------

@pytest.mark.parametrize(("text", "key", "shown"), [
    ("[worker]\nconcurrency = true\n", "worker.concurrency", "True"),
    ("[worker]\nconcurrency = 4.0\n", "worker.concurrency", "4.0"),
    ('[worker]\nbatch_size = "10"\n', "worker.batch_size", "'10'"),
    ("[worker]\nmax_attempts = false\n", "worker.max_attempts", "False"),
    ("[database]\npool_size = true\n", "database.pool_size", "True"),
    ('[metrics]\nport = "9464"\n', "metrics.port", "'9464'"),
    ('[connectors.erp]\nkind = "csv"\nrate_limit_per_minute = true\n', "connectors.erp.rate_limit_per_minute", "True"),
])
def test_integers_are_written_as_integers(tmp_path: Path, text: str, key: str, shown: str) -> None:
    path = write(tmp_path, text)
    assert only(path) == f"{path}: {key} = {shown}: expected a whole number (a TOML integer, unquoted)"


@pytest.mark.parametrize(("text", "key", "shown"), [
    ('[metrics]\nenabled = "yes"\n', "metrics.enabled", "'yes'"),
    ("[scheduler]\nenabled = 0\n", "scheduler.enabled", "0"),
    ('[connectors.erp]\nkind = "csv"\nenabled = "false"\n', "connectors.erp.enabled", "'false'"),
    ('[schedule.prune]\njob = "hub.prune_jobs"\nevery = "1h"\nenabled = "off"\n', "schedule.prune.enabled", "'off'"),
])
def test_booleans_are_written_as_booleans(tmp_path: Path, text: str, key: str, shown: str) -> None:
    path = write(tmp_path, text)
    assert only(path) == f"{path}: {key} = {shown}: expected true or false (a TOML boolean, unquoted)"


def test_overrides_of_numbers_and_booleans_are_read_as_toml(tmp_path: Path) -> None:
    path = write(tmp_path, '[connectors.erp]\nkind = "csv"\n')
    loaded = load(path, environ={
        "HUB_WORKER__CONCURRENCY": "8", "HUB_METRICS__ENABLED": "true", "HUB_SCHEDULER__ENABLED": "false",
        "HUB_WORKER__LEASE": "5s", "HUB_WORKER__POLL_INTERVAL": "2", "HUB_DATABASE__URL": "postgresql://hub@db:5432/hub",
        "HUB_DATABASE__PASSWORD": "123456", "HUB_CONNECTORS__ERP__RATE_LIMIT_PER_MINUTE": "60",
        "HUB_CONNECTORS__ERP__ENABLED": "false", "HUB_CONNECTORS__ERP__PATH": "1234", "HUB_LOG__LEVEL": "debug",
    })
    s = loaded.settings
    assert (s.worker.concurrency, s.metrics.enabled, s.scheduler.enabled) == (8, True, False)
    assert (s.worker.lease, s.worker.poll_interval, s.log.level) == (5.0, 2.0, "debug")
    assert s.database.url == "postgresql://hub@db:5432/hub"
    # a secret, and a connector's own option, stay the text they were (their validators decide)
    assert s.database.password is not None and s.database.password.get() == "123456"
    erp = s.connectors["erp"]
    assert (erp.rate_limit_per_minute, erp.enabled, erp.options()) == (60, False, {"path": "1234"})


@pytest.mark.parametrize(("name", "value", "shown", "message"), [
    ("HUB_WORKER__CONCURRENCY", "true", "True", "expected a whole number (a TOML integer, unquoted)"),
    ("HUB_WORKER__CONCURRENCY", "8\nx = 1", "'8\\nx = 1'", "expected a whole number (a TOML integer, unquoted)"),
    ("HUB_METRICS__ENABLED", "yes", "'yes'", "expected true or false (a TOML boolean, unquoted)"),
    ("HUB_METRICS__ENABLED", "1", "1", "expected true or false (a TOML boolean, unquoted)"),
])
def test_overrides_of_the_wrong_type(tmp_path: Path, name: str, value: str, shown: str, message: str) -> None:
    key = name.removeprefix("HUB_").replace("__", ".").lower()
    assert only(write(tmp_path, ""), {name: value}) == f"environment {name}: {key} = {shown}: {message}"


# --- 5. problems an override causes name the variable --------------------------------------------------------

@pytest.mark.parametrize(("environ", "expected"), [
    ({"HUB_WROKER__CONCURRENCY": "3"},
     "environment HUB_WROKER__CONCURRENCY: wroker = {'concurrency': '3'}: unknown key"),
    ({"HUB_CONNECTORS__ERP__SETTLE": "-1"}, "environment HUB_CONNECTORS__ERP__SETTLE: connectors.erp.kind: missing "
                                            "(required)"),
    ({"HUB_CONNECTORS__ERP__BOGUS": "1"}, "environment HUB_CONNECTORS__ERP__BOGUS: connectors.erp.kind: missing "
                                          "(required)"),
    ({"HUB_WORKER__CONCURRENCY__X": "1"}, "environment HUB_WORKER__CONCURRENCY__X: worker.concurrency = {'x': '1'}: "
                                          "expected a whole number (a TOML integer, unquoted)"),
    ({"HUB_SCHEDULE__X__EVERY": "5s"}, "environment HUB_SCHEDULE__X__EVERY: schedule.x.job: missing (required)"),
    ({"HUB_SCHEDULE__X__EVERY": "5s", "HUB_SCHEDULE__X__JOB": "Sync Now"},
     "environment HUB_SCHEDULE__X__JOB: schedule.x.job = 'Sync Now': job kinds are lower-case words joined by dots"),
])
def test_a_problem_an_override_causes_names_the_variable(tmp_path: Path, environ: dict[str, str],
                                                         expected: str) -> None:
    assert only(write(tmp_path, "[worker]\nconcurrency = 2\n"), environ) == expected


def test_a_table_both_the_file_and_an_override_fill_names_both(tmp_path: Path) -> None:
    path = write(tmp_path, '[wroker]\nbatch_size = 3\n')
    assert only(path, {"HUB_WROKER__CONCURRENCY": "3"}) == \
        f"{path} and environment HUB_WROKER__CONCURRENCY: wroker = {{'batch_size': 3, 'concurrency': '3'}}: unknown key"
    # a missing key of a table the file has is the file's
    path = write(tmp_path, '[schedule.x]\nevery = "1m"\n')
    assert only(path, {"HUB_SCHEDULE__X__PRIORITY": "1"}) == f"{path}: schedule.x.job: missing (required)"


def test_source_of_a_connector_option(tmp_path: Path) -> None:
    """What the connector options' validation (hub/platform/registry.py) can name instead of the file."""
    path = write(tmp_path, '[connectors.erp]\nkind = "csv"\npath = "x.csv"\n')
    loaded = load(path, environ={"HUB_CONNECTORS__ERP__SETTLE": "-1"})
    assert loaded.source_of("connectors.erp.settle") == "environment HUB_CONNECTORS__ERP__SETTLE"
    assert loaded.source_of("connectors.erp.path") == str(path)
    assert loaded.source_of("connectors.erp") == f"{path} and environment HUB_CONNECTORS__ERP__SETTLE"


@pytest.mark.parametrize(("environ", "expected"), [
    ({"HUB_WORKER__": "3"}, "environment HUB_WORKER__: not a config key"),
    ({"HUB_WORKER____CONCURRENCY": "3"}, "environment HUB_WORKER____CONCURRENCY: not a config key"),
    ({"HUB_WORKER__CONCURRENCY": "3", "HUB_WORKER__CONCURRENCY__X": "1"},
     "environment HUB_WORKER__CONCURRENCY__X: worker.concurrency.x: clashes with HUB_WORKER__CONCURRENCY"),
    ({"HUB_WORKER__CONCURRENCY": "3", "HUB_worker__concurrency": "4"},
     "environment HUB_worker__concurrency: worker.concurrency: clashes with HUB_WORKER__CONCURRENCY"),
])
def test_overrides_that_cannot_apply_are_not_dropped(tmp_path: Path, environ: dict[str, str], expected: str) -> None:
    assert only(write(tmp_path, ""), environ).startswith(expected)


# --- 6. a BOM --------------------------------------------------------------------------------------------------

def test_a_config_starting_with_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_bytes(b"\xef\xbb\xbf[worker]\nconcurrency = 3\n")
    assert load(path, environ={}).settings.worker.concurrency == 3
    path.write_bytes(b'\xef\xbb\xbf[worker]\nx = "caf\xe9"\n')
    assert only(path) == f"{path}: not UTF-8 text (byte 0xe9 at offset 20): save the file as UTF-8"


# --- 7. a file the hub may not read ------------------------------------------------------------------------------

def _unreadable(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == path:
            raise PermissionError(13, "Permission denied", str(path))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)


def test_an_unreadable_config_is_an_environment_failure(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[worker]\nconcurrency = 3\n")
    _unreadable(monkeypatch, path)
    with pytest.raises(EnvironmentFailure) as info:
        load(path, environ={})
    assert explain(info.value) == (1, [f"{path}: cannot read: Permission denied"])
    assert run(capsys, "--config", str(path), "config", "check") == (1, f"hub: {path}: cannot read: Permission denied")


def test_a_missing_or_folder_config_stays_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run(capsys, "--config", str(tmp_path / "nope.toml"), "config", "check") == (
        2, f"hub: {tmp_path / 'nope.toml'}: config file not found")
    assert run(capsys, "--config", str(tmp_path), "config", "check")[0] == 2


# --- 8. a database a newer hub migrated ----------------------------------------------------------------------------

UNKNOWN = "is at revision 0099abc, which this version of the hub does not know (written by a newer hub?): " \
          "upgrade the hub or point database.url elsewhere"


def _newer_database(tmp_path: Path) -> tuple[Path, str]:
    file = tmp_path / "hub.db"
    url = f"sqlite:///{file}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    with sqlite3.connect(file) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099abc'")
    return file, url


def test_a_database_at_a_revision_this_hub_does_not_know(tmp_path: Path) -> None:
    _, url = _newer_database(tmp_path)
    engine = db.make_engine(url)
    try:
        state = db.schema_state(engine)
        assert (state.current, state.known, state.up_to_date) == ("0099abc", False, False)
        for step in (db.require_migrated, db.upgrade, db.downgrade):
            with pytest.raises(EnvironmentFailure) as info:
                step(engine)
            assert str(info.value) == f"database {url} {UNKNOWN}"
        assert db.schema_state(engine).current == "0099abc"  # left as it was
    finally:
        engine.dispose()


@pytest.mark.parametrize("command", [["status"], ["init"], ["run", "--once"]])
def test_commands_on_a_newer_database(capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]) -> None:
    _, url = _newer_database(tmp_path)
    path = write(tmp_path, f'[database]\nurl = "{url}"\n')
    assert run(capsys, "--config", str(path), *command) == (1, f"hub: database {url} {UNKNOWN}")
