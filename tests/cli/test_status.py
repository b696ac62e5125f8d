"""`hub status` tells what an operator needs: the ERP quarantine, and each periodic job's last
success and last failure, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from hub.catalog.models import ErpReject
from hub.cli.main import main
from hub.jobs import queue
from hub.jobs.queue import Outcome
from hub.kernel.clock import utcnow
from hub.platform.config import WorkerSettings
from hub.platform.db import transaction


def test_status_shows_the_quarantine_and_each_periodic_jobs_outcomes(
        capsys: pytest.CaptureFixture[str], db_url: str, engine: Engine, tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n[schedule.housekeeping]\njob = "hub.prune_jobs"\n'
                      'every = "1h"\n[schedule.quiet]\njob = "hub.prune_jobs"\nevery = "2h"\n')
    now = utcnow()
    with transaction(engine) as s:
        for line in (3, 4):
            s.add(ErpReject(erp="erp", record_key=f"feed.csv:{line}", sku=None, source=f"feed.csv:{line}",
                            field="stock", value="-2", reason="stock cannot be negative", first_seen=now,
                            last_seen=now))
        ok = queue.enqueue(s, "hub.prune_jobs", {}, key="schedule:housekeeping:1").id
        bad = queue.enqueue(s, "hub.prune_jobs", {}, key="schedule:housekeeping:2").id
    claimed = {j.id: j for j in queue.claim(engine, "w", limit=10, lease=30)}
    queue.settle(engine, [Outcome(claimed[ok], ok=True),
                          Outcome(claimed[bad], ok=False, error="disk full", retryable=False)],
                 WorkerSettings(), "w")

    assert main(["--config", str(config), "status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(q["erp"], q["records"]) for q in data["erp_quarantine"]] == [("erp", 2)]
    schedule = {s["name"]: s for s in data["schedule"]}
    assert schedule["housekeeping"]["last_success_at"] is not None
    assert schedule["housekeeping"]["last_failure_at"] is not None
    assert schedule["housekeeping"]["last_failure"] == "disk full"
    assert (schedule["quiet"]["last_success_at"], schedule["quiet"]["last_failure_at"]) == (None, None)

    assert main(["--config", str(config), "status"]) == 0
    out = capsys.readouterr().out
    assert "ERP quarantine: erp 2 record(s) since" in out and "hub erp rejects" in out
    assert "disk full" in out
