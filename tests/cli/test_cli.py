"""The admin CLI: one-line errors with exit code 2, tables and JSON, on both databases."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from hub.cli.main import main
from hub.jobs import queue
from hub.platform.db import make_engine, transaction
from tests.support.pgtemp import free_port

HUB_CLI = Path(__file__).resolve().parents[1] / "support" / "hub_cli.py"  # hub with the test-shop kind


def write_config(tmp_path: Path, url: str, extra: str = "") -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(f"""
[database]
url = "{url}"
[worker]
concurrency = 2
poll_interval = "50ms"
backoff_initial = "50ms"
backoff_max = "100ms"
max_attempts = 2
shutdown_timeout = "5s"
[scheduler]
leader_poll = "200ms"
[connectors.test-shop]
kind = "test-shop"
[schedule.heartbeat]
job = "test.heartbeat"
every = "1s"
[log]
format = "json"
{extra}
""")
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("argv", [
    ["jobs", "show", "abc"],
    ["jobs", "list", "--state", "nope"],
    ["jobs", "retry"],
    ["frobnicate"],
    ["run", "--timeout", "-3"],
])
def test_bad_arguments_exit_2_with_one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    one_line_error(capsys.readouterr().err)


def test_unmigrated_database_is_refused(
    capsys: pytest.CaptureFixture[str], empty_db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, empty_db_url)
    code, _, err = run_cli(capsys, "--config", str(config), "run", "--once")
    assert code == 2
    assert "has no hub schema: run `hub init` (or `hub run --migrate`)" in one_line_error(err)
    code, _, err = run_cli(capsys, "--config", str(config), "status")
    assert code == 2


def test_init_run_status_jobs(capsys: pytest.CaptureFixture[str], empty_db_url: str, tmp_path: Path) -> None:
    config = str(write_config(tmp_path, empty_db_url))
    code, out, _ = run_cli(capsys, "--config", config, "init")
    assert code == 0 and "migrated from empty to " in out
    code, out, _ = run_cli(capsys, "init", "--config", config)  # --config after the command works too
    assert code == 0 and "up to date" in out

    engine = make_engine(empty_db_url)
    with transaction(engine) as s:
        queue.enqueue(s, "test.poison", {"offer": "42"}, key="poison", connector="test-shop")
        ok = queue.enqueue(s, "test.push_stock", {"sku": "A", "quantity": 1}, key="push-A",
                           connector="test-shop").id
    assert run_cli(capsys, "--config", config, "run", "--once", "--timeout", "60")[0] == 1  # one went dead

    code, out, _ = run_cli(capsys, "--config", config, "status", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["queue"]["dead"] == 1 and data["queue"]["done"] >= 2
    assert data["dead_jobs"][0]["kind"] == "test.poison"
    assert data["schedule"][0]["name"] == "heartbeat" and data["schedule"][0]["last_job_state"] == "done"
    assert data["connectors"][0]["name"] == "test-shop" and data["connectors"][0]["health"] in ("ok", "failing")
    code, out, _ = run_cli(capsys, "--config", config, "status")
    assert code == 0 and "dead jobs (1 shown)" in out and "test.poison" in out

    code, out, _ = run_cli(capsys, "--config", config, "jobs", "list", "--state", "dead", "--json")
    (dead,) = json.loads(out)
    code, out, _ = run_cli(capsys, "--config", config, "jobs", "show", str(dead["id"]), "--json")
    detail = json.loads(out)
    assert detail["payload"] == {"offer": "42"} and detail["errors"][0]["outcome"] == "dead"
    code, out, _ = run_cli(capsys, "--config", config, "jobs", "show", str(dead["id"]))
    assert code == 0 and "error history (1)" in out

    code, _, err = run_cli(capsys, "--config", config, "jobs", "retry", str(ok))
    assert code == 2 and "is done; only dead, failed-retrying or cancelled" in one_line_error(err)
    code, _, err = run_cli(capsys, "--config", config, "jobs", "show", "999999")
    assert code == 2 and one_line_error(err) == "hub: no job with id 999999"
    code, out, _ = run_cli(capsys, "--config", config, "jobs", "retry", "--dead", "--json")
    assert json.loads(out) == {"retried": [dead["id"]]}
    code, out, _ = run_cli(capsys, "--config", config, "jobs", "cancel", str(dead["id"]))
    assert code == 0 and "cancelled" in out
    code, _, err = run_cli(capsys, "--config", config, "jobs", "cancel", str(dead["id"]))
    assert code == 2 and "is cancelled" in one_line_error(err)
    engine.dispose()


def test_config_check(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    code, out, _ = run_cli(capsys, "--config", str(config), "config", "check")
    assert code == 0 and "is valid" in out and "heartbeat: test.heartbeat" in out
    assert "stock.toml" in out and "pricing.toml" in out and "vat_rates.toml" not in out  # VAT codes: hub.kernel.vat
    code, out, _ = run_cli(capsys, "--config", str(config), "config", "check", "--json")
    assert "test.heartbeat" in json.loads(out)["job_kinds"]
    bad = write_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}",
                       '[connectors.shop]\nkind = "nosuch"\n[schedule.typo]\njob = "no.such"\nevery = "1s"\n')
    code, _, err = run_cli(capsys, "--config", str(bad), "config", "check")
    assert code == 2
    assert f"hub: {bad}: connectors.shop.kind = 'nosuch': unknown connector kind" in err


def test_config_check_validates_mappings_override(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    maps = tmp_path / "maps"
    maps.mkdir()
    (maps / "stock.toml").write_text('[defaults]\npercent = 150\n[channels.shop]\nwarehouses = []\n')
    (maps / "pricing.toml").write_text("[defaults]\nmarkup_pct = 1.5\n")
    (maps / "pricingg.toml").write_text("")
    # the VAT codes are law (hub.kernel.vat), no longer a mappings file: an old override is unknown
    (maps / "vat_rates.toml").write_text('[rates.23]\nrate = "23"\nlabel = "x"\n')
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", '[mappings]\ndir = "maps"\n')
    code, _, err = run_cli(capsys, "--config", str(config), "config", "check")
    assert code == 2
    assert f"{maps / 'pricingg.toml'}: unknown mappings file" in err
    assert f"{maps / 'vat_rates.toml'}: unknown mappings file" in err
    assert f"{maps / 'stock.toml'}: defaults.percent = 150: Input should be less than or equal to 100" in err
    assert f"{maps / 'stock.toml'}: channels.shop.warehouses = []: list at least one warehouse" in err
    assert f"{maps / 'pricing.toml'}: defaults.markup_pct = 1.5: write the amount as a string" in err
    (maps / "stock.toml").write_text('[defaults]\nsafety_buffer = 2\n[channels.shop]\nwarehouses = ["MAG", "MAG"]\n')
    for name in ("pricing.toml", "pricingg.toml", "vat_rates.toml"):
        (maps / name).unlink()
    code, _, err = run_cli(capsys, "--config", str(config), "config", "check")
    assert code == 2
    assert one_line_error(err) == (f"hub: {maps / 'stock.toml'}: channels.shop.warehouses = ['MAG', 'MAG']: "
                                   "a warehouse is listed twice")
    (maps / "stock.toml").write_text("[defaults]\nsafety_buffer = 2\n")
    code, out, _ = run_cli(capsys, "--config", str(config), "config", "check")
    assert code == 0 and f"stock.toml: {maps / 'stock.toml'} (override)" in out


def test_daemon_speaks_systemd_and_serves_metrics(tmp_path: Path) -> None:
    """A real `hub run`: READY=1, WATCHDOG=1, Prometheus on localhost, SIGTERM -> STOPPING=1, exit 0."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    port = free_port()
    config = write_config(tmp_path, url, f"[metrics]\nenabled = true\nport = {port}\n")
    sock_path = tmp_path / "notify.sock"
    received: list[str] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify_sock:
        notify_sock.bind(str(sock_path))
        notify_sock.settimeout(30)
        env = {**os.environ, "NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "1000000"}
        env.pop("WATCHDOG_PID", None)
        proc = subprocess.Popen([sys.executable, str(HUB_CLI), "--config", str(config), "run", "--migrate"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            while not any(m.startswith("READY=1") for m in received):
                received.append(notify_sock.recv(4096).decode())
            while "WATCHDOG=1" not in received:
                received.append(notify_sock.recv(4096).decode())
            deadline = time.monotonic() + 20
            body = ""
            while "test.heartbeat" not in body and time.monotonic() < deadline:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                    body = resp.read().decode()
                time.sleep(0.2)
            assert 'hub_queue_jobs{state="done"}' in body
            assert 'hub_job_duration_seconds_count{kind="test.heartbeat",outcome="done"}' in body
            proc.send_signal(signal.SIGTERM)
            while "STOPPING=1" not in received:
                received.append(notify_sock.recv(4096).decode())
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            _, stderr = proc.communicate(timeout=10)
    assert '"event": "stop requested"' in stderr
    assert "Traceback" not in stderr
