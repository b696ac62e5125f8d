"""The shipping commands: list, show, create, cancel, the packer's labels in one PDF (printed once unless
--all), pickups; every bad input one line and exit 2."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine

from hub.platform.db import transaction
from hub.shipping.models import Shipment
from tests.cli.test_cli import one_line_error, run_cli
from tests.shipping.test_shipping_flow import Hub, _order, _shipment, _world
from tests.support.fake_carrier import FakeCarrier
from tests.support.fake_connectors import INSTANCES, make_order


def test_shipping_commands(shipping_fakes: None, db_url: str, engine: Engine, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    hub, _, shop = _world(tmp_path, db_url, engine)
    config = str(tmp_path / "hub.toml")

    def work() -> None:
        """The worker between commands (stopped while a command runs: its log lines are not the command's)."""
        worker = Hub(engine, hub.loaded)
        worker.pool.start()
        try:
            worker.quiet()
        finally:
            worker.pool.stop()
        capsys.readouterr()

    try:
        for n in (1, 2, 3):
            shop.place(make_order("shop", f"P{n}", [("A", "s-A", 1, "100.00")]))
        hub.run("orders.poll", {"channel": "shop"}, "poll-1", "shop")
    finally:
        hub.pool.stop()
    capsys.readouterr()
    code, out, err = run_cli(capsys, "--config", config, "shipments", "list", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["state"] for r in rows] == ["label_ready"] * 3 and all(len(r["tracking"]) == 1 for r in rows)
    code, out, _ = run_cli(capsys, "--config", config, "shipments", "show", str(rows[0]["id"]))
    assert code == 0 and "draft -> booking" in out and "label_ready" in out

    # the day's labels in one PDF, each once; --all prints them again
    pdf = tmp_path / "today.pdf"
    code, out, _ = run_cli(capsys, "--config", config, "labels", "print", "--out", str(pdf))
    assert code == 0 and "3 labels" in out
    assert len(PdfReader(io.BytesIO(pdf.read_bytes())).pages) == 3
    code, _, err = run_cli(capsys, "--config", config, "labels", "print", "--out", str(pdf))
    assert code == 2 and "all printed: --all prints them again" in one_line_error(err)
    code, out, _ = run_cli(capsys, "--config", config, "labels", "print", "--all", "--out", str(pdf), "--json")
    assert code == 0 and json.loads(out)["labels"] == 3

    # a label file changed on disk is refused by its checksum, naming the file
    path = Path(rows[0]["label"])
    path.write_bytes(path.read_bytes() + b"x")
    code, _, err = run_cli(capsys, "--config", config, "labels", "print", "--all", "--out", str(pdf))
    assert code == 2 and f"{path}: the label file changed since it was stored" in one_line_error(err)

    # an operator's second shipment with another carrier, then cancelled (queued, done by the worker)
    order = _order(engine, "P1")
    code, out, err = run_cli(capsys, "--config", config, "shipments", "create", str(order.id),
                             "--carrier", "lockers-b", "--service", "locker", "--json")
    assert code == 0, err
    created = json.loads(out)
    assert created["reference"] == f"HUB-{order.id}-2" and created["carrier"] == "lockers-b"
    work()
    assert len(INSTANCES["lockers-b"].bookings) == 1
    code, out, _ = run_cli(capsys, "--config", config, "shipments", "cancel", str(created["id"]))
    assert code == 0 and "cancel queued" in out
    work()
    with transaction(engine) as s:
        assert s.get(Shipment, created["id"]).state == "cancelled"
    code, _, err = run_cli(capsys, "--config", config, "shipments", "cancel", str(created["id"]))
    assert code == 2 and "is cancelled: only a shipment not yet handed over" in one_line_error(err)

    # pickups: booked now on request, listed
    code, out, _ = run_cli(capsys, "--config", config, "pickups", "book", "--carrier", "courier-a")
    assert code == 0 and "queued" in out
    work()
    code, out, _ = run_cli(capsys, "--config", config, "pickups", "list", "--json")
    assert [(p["carrier"], p["state"], p["parcels"]) for p in json.loads(out)] == [("courier-a", "booked", 3)]
    courier: FakeCarrier = INSTANCES["courier-a"]
    assert len(courier.pickups) == 1
    assert _shipment(engine, "P2").pickup_id is not None

    for argv, expect in [
        (("shipments", "show", "999"), "no shipment with id 999"),
        (("shipments", "create", "999"), "no order with id 999"),
        (("shipments", "create", str(order.id), "--carrier", "courier-a"), "--carrier and --service go together"),
        (("shipments", "create", str(order.id), "--carrier", "nosuch", "--service", "x"),
         "no carrier named 'nosuch' in the config"),
        (("shipments", "list", "--carrier", "nosuch"), "no carrier named 'nosuch'"),
        (("pickups", "cancel", "999"), "no pickup with id 999"),
    ]:
        code, _, err = run_cli(capsys, "--config", config, *argv)
        assert code == 2 and expect in one_line_error(err), (argv, err)
    with pytest.raises(SystemExit) as exited:  # argparse's own exit
        run_cli(capsys, "--config", config, "labels", "print", "--date", "2026-13-01", "--out", str(pdf))
    assert exited.value.code == 2
    assert "expected a date as YYYY-MM-DD, got '2026-13-01'" in one_line_error(capsys.readouterr().err)
