"""The sync capability's CLI on SQLite and PostgreSQL: sync (dry run and real), stock show, prices
explain / refused / competitors, listings unmatched, erp rejects, the kill switch and repricing."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hub.cli.main import main
from hub.kernel.ports.erp import RejectedRecord
from tests.support.fake_connectors import INSTANCES, FakeChannel, FakeErp


def setup(tmp_path: Path, url: str, pricing: str = "") -> str:
    maps = tmp_path / "maps"
    maps.mkdir(exist_ok=True)
    (maps / "pricing.toml").write_text("[defaults]\nmax_changes_per_run = 1000\n" + pricing)
    path = tmp_path / "hub.toml"
    path.write_text(f"""
[database]
url = "{url}"
[worker]
poll_interval = "50ms"
[mappings]
dir = "maps"
[connectors.erp]
kind = "fake-erp"
[connectors.shop]
kind = "fake-channel"
""")
    erp = INSTANCES.setdefault("erp", FakeErp("erp"))
    erp.set("A", 5, "100.00", cost="50.00")
    erp.set("B", 2, "20.00", cost="5.00")
    erp.set("C", 3, "10.00", cost="9.00")  # floor 11.07: refused
    erp.set("E", 1, "30.00", cost="10.00")  # no offer on the channel
    erp.rejected = [RejectedRecord("feed.csv:9", "D", "vat_rate", "17", "not a Polish VAT rate")]
    shop = INSTANCES.setdefault("shop", FakeChannel("shop"))
    shop.offers = {
        "o1": {"signature": "A", "quantity": 0, "price": Decimal("90.00")},
        "o2": {"signature": "B", "quantity": 2, "price": Decimal("21.00")},
        "o3": {"signature": "C", "quantity": 0, "price": Decimal("12.00")},
        "o4": {"signature": "ZZZ", "quantity": 1, "price": Decimal("1.00")},
    }
    assert main(["--config", str(path), "init"]) == 0
    return str(path)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    try:
        return code, json.loads(out), err
    except json.JSONDecodeError:
        return code, out, err


def test_sync_commands(fakes: None, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = setup(tmp_path, db_url)
    capsys.readouterr()
    shop: FakeChannel = INSTANCES["shop"]

    code, report, err = cli(capsys, "--config", config, "sync", "--full", "--dry-run", "--json")
    assert code == 0, err
    assert report["reconcile"]["shop"]["new_bindings"] == 3
    assert {(c["sku"], c["quantity"], c["price"]) for c in report["changes"]} == {
        ("A", 5, "100.00"), ("B", None, "20.00"), ("C", 3, None)}
    assert shop.applied == []  # a dry run sends nothing

    code, report, _ = cli(capsys, "--config", config, "sync", "--full", "--json")
    assert code == 0 and report["pushes"] == {"done": 2}  # 3 changes, batches of 2
    assert shop.offers["o1"]["quantity"] == 5 and shop.offers["o1"]["price"] == Decimal("100.00")
    assert shop.offers["o2"]["price"] == Decimal("20.00") and shop.offers["o3"]["quantity"] == 3
    code, report, _ = cli(capsys, "--config", config, "sync", "--json")
    assert report["changes"] == []  # in step: nothing to send

    code, stock, _ = cli(capsys, "--config", config, "stock", "show", "A", "--json")
    assert stock["stock"] == {"MAIN": 5} and stock["reserved"] == 0
    (channel,) = stock["channels"]
    assert (channel["channel"], channel["ats"], channel["acknowledged"]) == ("shop", 5, 5)

    code, out, _ = cli(capsys, "--config", config, "prices", "explain", "C", "--channel", "shop")
    assert code == 0 and "floor" in out and "11.07" in out and "refused" in out
    code, refused, _ = cli(capsys, "--config", config, "prices", "refused", "--json")
    assert [(r["sku"], r["floor"]) for r in refused] == [("C", "11.07")]
    code, unmatched, _ = cli(capsys, "--config", config, "listings", "unmatched", "--json")
    assert [o["offer"] for o in unmatched["offers_without_sku"]] == ["o4"]
    assert [s["sku"] for s in unmatched["skus_without_offer"]] == ["E"]
    code, rejects, _ = cli(capsys, "--config", config, "erp", "rejects", "--json")
    assert [(r["sku"], r["field"], r["value"]) for r in rejects] == [("D", "vat_rate", "17")]

    for argv in (["stock", "show", "NOPE"], ["sync", "--channel", "nope"], ["prices", "explain", "NOPE"]):
        code, _, err = cli(capsys, "--config", config, *argv)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def _everything(db_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to prove a command changed none."""
    from sqlalchemy import MetaData, select

    from hub.platform.db import make_engine

    engine = make_engine(db_url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return {name: sorted(map(tuple, conn.execute(select(table)).all()), key=repr)
                    for name, table in meta.tables.items()}
    finally:
        engine.dispose()


def test_a_dry_run_stores_nothing_and_a_fresh_database_says_what_to_run(
        fakes: None, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = setup(tmp_path, db_url)
    capsys.readouterr()
    before = _everything(db_url)
    code, out, _ = cli(capsys, "--config", config, "sync", "--dry-run")
    assert code == 0
    assert "erp erp: 4 products read" in out  # the ERP was read (and its records would change)...
    assert "no channel offer is bound to a SKU yet" in out and "run `hub sync --full`" in out
    assert "(no differences)" not in out
    code, report, _ = cli(capsys, "--config", config, "sync", "--full", "--dry-run", "--json")
    assert code == 0 and len(report["changes"]) == 3 and report["bound_offers"] == 3
    assert _everything(db_url) == before  # ...and nothing stayed: no product, cursor, binding, job or health
    assert INSTANCES["shop"].applied == []

    # a real run stores what the dry run showed, and each connector's health
    code, report, _ = cli(capsys, "--config", config, "sync", "--full", "--json")
    assert code == 0 and len(report["changes"]) == 3
    code, status, _ = cli(capsys, "--config", config, "status", "--json")
    assert {c["name"]: c["health"] for c in status["connectors"]} == {"erp": "ok", "shop": "ok"}


def test_sync_records_a_failing_connector_in_its_health(
        fakes: None, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hub.kernel.errors import RetryableError

    config = setup(tmp_path, db_url)
    capsys.readouterr()
    shop: FakeChannel = INSTANCES["shop"]
    shop.listings_error = RetryableError("shop is down (token=s3cr3t-token)")
    code, _, err = cli(capsys, "--config", config, "sync", "--full")
    assert code == 1 and err.startswith("hub: channel shop: shop is down")
    code, status, _ = cli(capsys, "--config", config, "status", "--json")
    (health,) = [c for c in status["connectors"] if c["name"] == "shop"]
    assert health["health"] == "failing" and "s3cr3t-token" not in health["last_error"]
    assert "shop is down" in health["last_error"]


def test_kill_switch_and_repricing(fakes: None, db_url: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = setup(tmp_path, db_url, pricing=(
        "[channels.shop]\nenabled = false\n"))
    capsys.readouterr()
    shop: FakeChannel = INSTANCES["shop"]
    code, report, _ = cli(capsys, "--config", config, "sync", "--full", "--json")
    assert code == 0
    assert all(c["price"] is None for c in report["changes"])  # the kill switch: stock only
    assert shop.offers["o1"] == {"signature": "A", "quantity": 5, "price": Decimal("90.00")}

    (tmp_path / "maps" / "pricing.toml").write_text(
        "[defaults]\nmin_margin_pct = \"10\"\n[defaults.repricing]\nstrategy = \"beat\"\nbeat_by = \"0.01\"\n")
    feed = tmp_path / "competitors.csv"
    feed.write_text("channel,sku,price\nshop,A,95.00\nshop,B,1.00\nshop,C,abc\n")
    code, imported, _ = cli(capsys, "--config", config, "prices", "competitors", str(feed), "--json")
    assert imported["imported"] == 2 and len(imported["problems"]) == 1 and "price = 'abc'" in imported["problems"][0]
    code, report, _ = cli(capsys, "--config", config, "sync", "--json")
    assert shop.offers["o1"]["price"] == Decimal("94.99")  # beat the competitor by 0.01, above the floor
    assert shop.offers["o2"]["price"] == Decimal("21.00")  # beating 1.00 would go under the floor: refused
    code, refused, _ = cli(capsys, "--config", config, "prices", "refused", "--json")
    assert {r["sku"] for r in refused} == {"B", "C"}
