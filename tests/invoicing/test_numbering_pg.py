"""Gapless numbering under load: 4 processes issuing 2,000 invoices at once on one PostgreSQL get 2,000
distinct consecutive numbers, although some documents fail their schema (stored without a number) and
some transactions roll back after taking theirs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hub.invoicing.models import Invoice
from hub.platform.db import make_engine, transaction, upgrade

HERE = Path(__file__).resolve().parent
PROCESSES, EACH = 4, 500


@pytest.mark.postgres
@pytest.mark.slow
def test_four_processes_issue_consecutive_numbers_without_gaps(pg_url: str, tmp_path: Path) -> None:
    engine = make_engine(pg_url)
    upgrade(engine)
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, str(HERE.parent / "support" / "invoice_proc.py"), pg_url, str(go),
                               str(i), str(EACH)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(PROCESSES)]
    try:
        for p in procs:
            line = p.stdout.readline().strip() if p.stdout else ""
            assert line == "ready", p.stderr.read() if p.stderr else ""
        go.write_text("go")
        for p in procs:
            _, err = p.communicate(timeout=240)
            assert p.returncode == 0, err[-3000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    with transaction(engine) as session:
        seqs = sorted(s for (s,) in session.execute(select(Invoice.seq).where(Invoice.number.is_not(None))))
        numbers = session.execute(select(func.count(func.distinct(Invoice.number)))).scalar_one()
        problems = session.execute(select(func.count()).select_from(Invoice).where(
            Invoice.state == "problem", Invoice.number.is_(None))).scalar_one()
        rolled_back = session.execute(select(func.count()).select_from(Invoice).where(
            Invoice.origin.like("rolled-back:%"))).scalar_one()
    assert seqs == list(range(1, PROCESSES * EACH + 1))  # 2,000 consecutive numbers from 1, none twice
    assert numbers == PROCESSES * EACH
    assert problems == PROCESSES * len([n for n in range(EACH) if n % 7 == 3]) and rolled_back == 0
