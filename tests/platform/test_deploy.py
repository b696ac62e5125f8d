"""The shipped unit file and example config are valid as shipped."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

from hub.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(ROOT / "deploy" / "hub.service")
    return parser


def test_unit_is_hardened_notify_service() -> None:
    service = unit()["Service"]
    assert service["Type"] == "notify"
    assert service["Restart"] == "on-failure"
    assert int(service["WatchdogSec"].rstrip("s")) > 0
    for key, value in {"DynamicUser": "yes", "ProtectSystem": "strict", "NoNewPrivileges": "yes",
                       "StateDirectory": "hub", "PrivateTmp": "yes"}.items():
        assert service[key] == value, key
    assert "LoadCredential" in service
    assert int(service["TimeoutStopSec"].rstrip("s")) > 30  # longer than worker.shutdown_timeout


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    text = (ROOT / "deploy" / "hub.service").read_text()
    text = text.replace("/opt/hub/.venv/bin/hub", str(Path(sys.executable).with_name("hub")))
    (tmp_path / "hub.service").write_text(text)
    if analyze is None:  # no systemd on this machine: the parser check above is what we have
        assert "ExecStart=" in text
        return
    result = subprocess.run([analyze, "verify", str(tmp_path / "hub.service")], capture_output=True, text=True)
    problems = [line for line in (result.stdout + result.stderr).splitlines() if "hub.service" in line]
    assert problems == [], problems


def test_example_config_passes_config_check(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    for name in ("db-password", "allegro-client-secret", "shop-consumer-secret", "inpost-token", "ksef-token"):
        (tmp_path / name).write_text(f"example-{name}")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    for name in [k for k in os.environ if k.startswith("HUB_")]:
        monkeypatch.delenv(name)
    assert main(["--config", str(ROOT / "deploy" / "hub.example.toml"), "config", "check"]) == 0
    out = capsys.readouterr().out
    assert "postgresql://hub@127.0.0.1:5432/hub" in out and "example-" not in out
    assert "allegro-main: allegro" in out and "erp: csv" in out and "shop: woocommerce" in out


def _writable(unit_text: str) -> list[Path]:
    """The folders the unit lets the hub write: ReadWritePaths= (any number of lines and entries) and
    the StateDirectory under /var/lib."""
    paths: list[Path] = []
    for line in unit_text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "ReadWritePaths":
            paths += [Path(p.lstrip("-+")) for p in value.split()]
        elif key.strip() == "StateDirectory":
            paths += [Path("/var/lib") / p for p in value.split()]
    return paths


def _uncovered(written: list[str], unit_text: str) -> list[str]:
    allowed = _writable(unit_text)
    return [p for p in written if not any(Path(p) == a or a in Path(p).parents for a in allowed)]


def test_the_unit_lets_the_hub_write_where_the_example_config_writes(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """ProtectSystem=strict makes everything else read-only: every folder `hub config check` reports
    the example config writing into is writable under the shipped unit."""
    import json

    for name in ("db-password", "allegro-client-secret", "shop-consumer-secret", "inpost-token", "ksef-token"):
        (tmp_path / name).write_text(f"example-{name}")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    for name in [k for k in os.environ if k.startswith("HUB_")]:
        monkeypatch.delenv(name)
    assert main(["--config", str(ROOT / "deploy" / "hub.example.toml"), "config", "check", "--json"]) == 0
    written = [p for paths in json.loads(capsys.readouterr().out)["writes_to"].values() for p in paths]
    assert written == ["/srv/erp-import/hub", "/var/lib/hub/labels"]  # the ERP outbox, the shipping labels
    unit_text = (ROOT / "deploy" / "hub.service").read_text()
    assert _uncovered(written, unit_text) == []
    # and the check can fail: a folder the unit does not list
    assert _uncovered(["/srv/labels"], unit_text) == ["/srv/labels"]
    assert main(["--config", str(ROOT / "deploy" / "hub.example.toml"), "config", "check"]) == 0
    out = capsys.readouterr().out
    assert "writes to (under systemd, list each in ReadWritePaths=): erp: /srv/erp-import/hub" in out


def test_config_check_warns_about_paths_this_machine_lacks(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """The example's ERP export and outbox do not exist here: the config is valid (exit 0, so the unit's
    ExecStartPre still lets orders flow), and each missing path is named with its key."""
    import json

    for name in ("db-password", "allegro-client-secret", "shop-consumer-secret", "inpost-token", "ksef-token"):
        (tmp_path / name).write_text(f"example-{name}")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    for name in [k for k in os.environ if k.startswith("HUB_")]:
        monkeypatch.delenv(name)
    example = str(ROOT / "deploy" / "hub.example.toml")
    assert main(["--config", example, "config", "check"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"warning: {example}: connectors.erp.path = '/srv/erp-export': no such file or folder "
        "(has the export run? is the path right?)",
        f"warning: {example}: connector erp writes into '/srv/erp-import/hub': no such folder: create it "
        "(the hub does not create folders another program reads)",
    ]
    feed, outbox = tmp_path / "export", tmp_path / "outbox"
    feed.mkdir()
    outbox.mkdir()
    monkeypatch.setenv("HUB_CONNECTORS__ERP__PATH", str(feed))
    monkeypatch.setenv("HUB_CONNECTORS__ERP__OUTBOX", str(outbox))
    assert main(["--config", example, "config", "check", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == []
    # as a user without the rights (this suite may run as root, who has them all)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert main(["--config", example, "config", "check", "--json"]) == 0
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    assert [w.split("': ")[-1] for w in warnings] == [
        "the folder cannot be read by this user: give the hub's user read access",
        "this user cannot write into it: give the hub's user write access"]
