"""Every failure of a `hub` command is one line on stderr: exit 2 for bad input, 1 for the environment
(or a bug), never a traceback unless --verbose; a closed pipe ends quietly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hub.cli import jobs as jobs_cli
from hub.cli.main import main
from hub.jobs.queue import NewJob, enqueue_many
from hub.platform.db import make_engine, transaction

TOO_BIG = str(2**64)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return code, lines[0]


def sqlite_config(tmp_path: Path, db: Path, extra: str = "") -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{db}"\n{extra}', encoding="utf-8")
    return path


def test_a_config_that_is_not_utf8(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_bytes(b'[database]\nurl = "sqlite:///caf\xe9.db"\n')
    assert run(capsys, "--config", str(config), "status") == (
        2, f"hub: {config}: not UTF-8 text (byte 0xe9 at offset 31): save the file as UTF-8")


@pytest.mark.parametrize("command", [["status"], ["init"], ["run", "--once"]])
def test_a_database_file_that_is_not_sqlite(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                            command: list[str]) -> None:
    db = tmp_path / "notes.db"
    db.write_text("these are my notes, not a database\n" * 200)
    config = sqlite_config(tmp_path, db)
    assert run(capsys, "--config", str(config), *command) == (
        2, "hub: database: file is not a database: [database] url names a file that is not a SQLite database")


@pytest.mark.parametrize("argv", [
    ["jobs", "show", TOO_BIG], ["jobs", "cancel", TOO_BIG], ["jobs", "list", "--limit", TOO_BIG],
    ["orders", "show", TOO_BIG], ["orders", "list", "--limit", TOO_BIG], ["returns", "accept", TOO_BIG],
    ["returns", "show", TOO_BIG], ["orders", "retry", "0"],
])
def test_ids_beyond_64_bits_are_refused_as_arguments(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, line = run(capsys, *argv)
    assert code == 2 and ("expected a number up to 9223372036854775807" in line
                          or "expected a number greater than 0" in line), line


def test_demo_dir_naming_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("x")
    assert run(capsys, "demo", "--dir", str(target)) == (
        2, f"hub: --dir {target}: exists and is not a folder; name a folder (it is created if missing)")


def test_sync_when_the_feed_file_is_missing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    feed = tmp_path / "erp" / "feed.csv"
    config = sqlite_config(tmp_path, tmp_path / "hub.db", f'[connectors.erp]\nkind = "csv"\npath = "{feed}"\n')
    assert main(["--config", str(config), "init"]) == 0
    capsys.readouterr()
    code, line = run(capsys, "--config", str(config), "sync")
    assert code == 1 and line.startswith(f"hub: ERP erp: {feed}: ") and "try again later" in line, line


def test_a_bug_is_one_line_and_verbose_shows_the_traceback(capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(_args: object) -> int:
        raise ValueError("something the hub did not expect")

    monkeypatch.setattr(jobs_cli, "cmd_status", broken)
    config = sqlite_config(tmp_path, tmp_path / "hub.db")
    assert run(capsys, "--config", str(config), "status") == (
        1, "hub: internal error: ValueError: something the hub did not expect (run again with --verbose and report "
           "the traceback)")
    assert main(["--config", str(config), "status", "--verbose"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.rstrip().endswith("report the traceback)")


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """More than a pipe's buffer of output, and a reader that takes one byte and goes away."""
    config = sqlite_config(tmp_path, tmp_path / "hub.db")
    hub = [sys.executable, "-m", "hub", "--config", str(config)]
    subprocess.run([*hub, "init"], check=True, capture_output=True)
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    with transaction(engine) as session:
        enqueue_many(session, [NewJob("test.a_kind_with_a_long_name_" + "x" * 40, {}, key=f"k{i}")
                               for i in range(3000)])
    engine.dispose()
    piped = subprocess.Popen([*hub, "jobs", "list", "--limit", "3000"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    assert piped.stdout is not None
    assert piped.stdout.read(1)
    piped.stdout.close()
    _out, err = piped.communicate(timeout=60)
    assert piped.returncode == 0 and err == b"", err


def _erp_config(tmp_path: Path, extra: str = "") -> Path:
    feed = tmp_path / "feed.csv"
    return sqlite_config(tmp_path, tmp_path / "hub.db",
                         f'[mappings]\ndir = "maps"\n[connectors.erp]\nkind = "csv"\npath = "{feed}"\n{extra}')


@pytest.mark.parametrize(("filename", "text", "key"), [
    ("pricing.toml", "[defaults]\n[channels.nope]\nmarkup_pct = \"5\"\n", "channels.nope"),
    ("stock.toml", "[defaults]\n[channels.nope]\nsafety_buffer = 1\n", "channels.nope"),
    ("order_status.toml", "[accounts.nope.inbound]\nREADY = \"paid\"\n", "accounts.nope"),
])
def test_a_mappings_file_naming_no_connector(capsys: pytest.CaptureFixture[str], tmp_path: Path, filename: str,
                                             text: str, key: str) -> None:
    config = _erp_config(tmp_path)
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / filename).write_text(text)
    assert run(capsys, "--config", str(config), "config", "check") == (
        2, f"hub: {tmp_path / 'maps' / filename}: {key}: no channel connector named 'nope' (configured channels: "
           "none)")


def test_a_schedule_payload_naming_no_connector(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = _erp_config(tmp_path, '[schedule.poll]\njob = "erp.poll"\nevery = "1m"\npayload = { erp = "nope" }\n')
    (tmp_path / "maps").mkdir()
    assert run(capsys, "--config", str(config), "run", "--once") == (
        2, f"hub: {config}: schedule.poll.payload.erp = 'nope': no ERP connector of that name (configured: erp)")


@pytest.mark.parametrize(("argv", "line"), [
    (["prices", "refused", "--channel", "nope"], "hub: no channel named 'nope' in the config (configured: none)"),
    (["orders", "list", "--channel", "nope"], "hub: no channel named 'nope' in the config (configured: none)"),
    (["erp", "rejects", "--erp", "nope"], "hub: no ERP named 'nope' in the config (configured: erp)"),
    (["listings", "unmatched", "--channel", "nope"], "hub: no channel named 'nope' (configured channels: none)"),
])
def test_a_filter_naming_no_connector(capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str],
                                      line: str) -> None:
    config = _erp_config(tmp_path)
    (tmp_path / "maps").mkdir()
    assert main(["--config", str(config), "init"]) == 0
    capsys.readouterr()
    assert run(capsys, "--config", str(config), *argv) == (2, line)


def test_a_sqlite_folder_that_does_not_exist(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = tmp_path / "state" / "hub" / "hub.db"
    config = sqlite_config(tmp_path, db)
    for command in (["status"], ["run", "--once"], ["jobs", "list"]):
        assert run(capsys, "--config", str(config), *command) == (
            2, f"hub: {config}: database.url = 'sqlite:///{db}': the folder {db.parent} does not exist (hub init "
               "creates it and the database)")
    assert main(["--config", str(config), "init"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"created the database folder {db.parent}\n") and db.is_file()
    assert main(["--config", str(config), "status"]) == 0
