"""The whole sync against the Allegro and WooCommerce simulators, through the job queue, with faults:
20% 5xx, 429 bursts, timeouts and lost responses. Every listing ends at its final desired value,
every Allegro command is applied once, nobody sends during a 429 block, no job dies."""

from __future__ import annotations

import random
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from connectors.allegro.simulator import AllegroSimulator, LossyTransport
from connectors.allegro.simulator import Faults as AllegroFaults
from connectors.shops.woocommerce.simulator import Faults as WooFaults
from connectors.shops.woocommerce.simulator import WooSimulator
from hub.app.wiring import build_handlers
from hub.jobs.models import Job
from hub.jobs.queue import enqueue, open_jobs
from hub.jobs.worker import WorkerPool
from hub.kernel.clock import utcnow
from hub.listings.models import Listing
from hub.platform.config import load
from hub.platform.credentials import TokenSet, TokenStore
from hub.platform.db import transaction

SKUS = [f"SKU-{i:03d}" for i in range(1, 41)]


def write_feed(path: Path, stock: dict[str, int], price: dict[str, Decimal]) -> None:
    rows = "".join(f"{s};Produkt {s};{stock[s]};{str(price[s]).replace('.', ',')};23;1,00\n" for s in SKUS)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("sku;name;stock;price_gross;vat_rate;cost_net\n" + rows, encoding="utf-8")
    tmp.replace(path)


def wait_quiet(engine: Engine, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if open_jobs(engine) == 0:
            return
        time.sleep(0.05)
    with transaction(engine) as s:
        stuck = s.execute(select(Job.id, Job.kind, Job.state, Job.attempts, Job.last_error)
                          .where(Job.state.in_(("pending", "running", "failed-retrying")))).all()
    raise AssertionError(f"queue not quiet after {timeout}s: {stuck}")


def run(engine: Engine, kind: str, payload: dict, key: str, connector: str | None = None) -> None:
    with transaction(engine) as s:
        enqueue(s, kind, payload, key=key, connector=connector)
    wait_quiet(engine)


@pytest.mark.slow
def test_channels_converge_under_faults(db_url: str, engine: Engine, tmp_path: Path) -> None:
    rng = random.Random(11)
    allegro = AllegroSimulator(clients={"cid": "secret"}, seed=3, block_scale=0.02, command_delay=0.01,
                               faults=AllegroFaults(error_5xx_rate=0.2, burst_429_rate=0.02))
    woo = WooSimulator(consumer_key="ck", consumer_secret="cs", seed=3)
    offer_ids, woo_ids = {}, {}
    for i, sku in enumerate(SKUS, start=1):
        offer_ids[sku] = str(9_000_000_000 + i)
        allegro.add_offer(offer_ids[sku], external_id=sku, quantity=1, price="1.00")
        woo_ids[sku] = woo.add_simple(sku, 1, "1.00")
    woo.faults = WooFaults(error_rate=0.2, burst_rate=0.02, retry_after=1, timeout_rate=0.05,
                           lost_response_rate=0.05)
    stock = {s: rng.randrange(0, 20) for s in SKUS}
    price = {s: Decimal(rng.randrange(1000, 9000)) / 100 for s in SKUS}
    feed = tmp_path / "feed.csv"
    write_feed(feed, stock, price)
    config = tmp_path / "hub.toml"
    config.write_text(f"""
[database]
url = "{db_url}"
[worker]
concurrency = 3
poll_interval = "20ms"
max_attempts = 200
backoff_initial = "50ms"
backoff_max = "300ms"
[connectors.erp]
kind = "csv"
path = "{feed}"
settle = 0
[connectors.allegro]
kind = "allegro"
api_url = "https://allegro.test"
auth_url = "https://allegro.test"
client_id = "cid"
client_secret = "secret"
command_poll_interval = "20ms"
rate_limit_block = "2s"  # at least the vendor's block (60 s x block_scale 0.02): calling during a block lengthens it
retry_backoff = "10ms"
[connectors.shop]
kind = "woocommerce"
base_url = "https://shop.test"
consumer_key = "ck"
consumer_secret = "cs"
""")
    loaded = load(config, environ={})
    pair = allegro.issue_tokens("cid")
    TokenStore(engine).save("allegro", TokenSet(pair["access_token"], pair["refresh_token"],
                                                utcnow() + timedelta(seconds=pair["expires_in"])))
    lossy = LossyTransport(allegro.transport(), lost_response_rate=0.05, timeout_rate=0.05, seed=5)
    handlers = build_handlers(loaded, transports={"allegro": lossy, "shop": woo.transport()})
    pool = WorkerPool(engine, handlers, loaded.settings.worker, name="faults")
    pool.start()
    try:
        run(engine, "erp.poll", {"erp": "erp"}, "poll-0", "erp")
        run(engine, "sync.reconcile", {"channel": "allegro"}, "reconcile-allegro", "allegro")
        run(engine, "sync.reconcile", {"channel": "shop"}, "reconcile-shop", "shop")
        for round_no in range(1, 4):
            for sku in rng.sample(SKUS, 15):
                stock[sku] = rng.randrange(0, 30)
                if rng.random() < 0.5:
                    price[sku] = Decimal(rng.randrange(1000, 9000)) / 100
            write_feed(feed, stock, price)
            run(engine, "erp.poll", {"erp": "erp"}, f"poll-{round_no}", "erp")
        run(engine, "sync.plan", {}, "final-plan")
    finally:
        pool.stop()

    for sku in SKUS:
        offer = allegro.offer(offer_ids[sku])
        shown_qty = offer.quantity if offer.status == "ACTIVE" else 0
        assert (shown_qty, offer.price) == (stock[sku], price[sku]), f"allegro {sku}"
        product = woo.product(woo_ids[sku])
        assert (product["stock_quantity"], Decimal(product["regular_price"])) == (stock[sku], price[sku]), sku
    assert allegro.commands() and all(c.applied == 1 for c in allegro.commands())
    assert allegro.block_violations == 0
    assert allegro.rate_limited > 0 or allegro.request_count() > 0
    with transaction(engine) as s:
        assert s.execute(select(Job).where(Job.state == "dead")).first() is None
        listings = s.execute(select(Listing).where(Listing.sku.is_not(None))).scalars().all()
    assert len(listings) == 2 * len(SKUS)
    assert all(x.ack_quantity == x.desired_quantity and x.ack_price == x.desired_price for x in listings)
    # the faults really happened
    assert lossy.lost + lossy.timed_out > 0
    failures_seen = sum(1 for j in listings if j.last_error)  # per-offer errors are not expected here
    assert failures_seen == 0


def test_revoked_login_holds_jobs_until_login(db_url: str, engine: Engine, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A revoked token: the account shows login-needed in hub status, its push waits without
    spending attempts, and a new login releases it."""
    import json

    from hub.cli.main import main
    from hub.jobs.models import JobFailure

    allegro = AllegroSimulator(clients={"cid": "secret"}, seed=1)
    allegro.add_offer("9000000001", external_id="SKU-001", quantity=1, price="10.00")
    feed = tmp_path / "feed.csv"
    feed.write_text("sku;name;stock;price_gross;vat_rate\nSKU-001;Produkt;7;10,00;23\n", encoding="utf-8")
    config = tmp_path / "hub.toml"
    config.write_text(f"""
[database]
url = "{db_url}"
[worker]
poll_interval = "20ms"
max_attempts = 2
[connectors.erp]
kind = "csv"
path = "{feed}"
settle = 0
[connectors.allegro]
kind = "allegro"
api_url = "https://allegro.test"
auth_url = "https://allegro.test"
client_id = "cid"
client_secret = "secret"
command_poll_interval = "20ms"
""")
    loaded = load(config, environ={})
    store = TokenStore(engine)
    pair = allegro.issue_tokens("cid")
    store.save("allegro", TokenSet(pair["access_token"], pair["refresh_token"],
                                   utcnow() + timedelta(seconds=pair["expires_in"])))
    handlers = build_handlers(loaded, transports={"allegro": allegro.transport()})
    pool = WorkerPool(engine, handlers, loaded.settings.worker, name="login")
    pool.start()
    try:
        run(engine, "erp.poll", {"erp": "erp"}, "poll", "erp")
        run(engine, "sync.reconcile", {"channel": "allegro"}, "reconcile", "allegro")
        assert allegro.offer("9000000001").quantity == 7
        # the seller changed the password: every token dies, the next refresh is refused
        allegro.revoke()
        store.save("allegro", TokenSet("stale", pair["refresh_token"], utcnow() + timedelta(seconds=30)))
        feed.write_text("sku;name;stock;price_gross;vat_rate\nSKU-001;Produkt;3;10,00;23\n", encoding="utf-8")
        with transaction(engine) as s:
            enqueue(s, "erp.poll", {"erp": "erp"}, key="poll-2", connector="erp")
        deadline = time.monotonic() + 20
        held = None
        while time.monotonic() < deadline and held is None:
            with transaction(engine) as s:
                held = s.execute(select(Job).join(JobFailure, JobFailure.job_id == Job.id).where(
                    Job.kind == "sync.push", JobFailure.outcome == "held")).scalars().first()
            time.sleep(0.05)
        assert held is not None, "the push was not held"
        assert held.state == "failed-retrying" and held.attempts == 0  # held, no attempt spent
        capsys.readouterr()
        assert main(["--config", str(config), "status", "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        health = {c["name"]: c["health"] for c in status["connectors"]}
        assert health["allegro"] == "login-needed"
        assert allegro.offer("9000000001").quantity == 7  # nothing sent meanwhile

        pair = allegro.issue_tokens("cid")  # the operator ran `hub allegro login allegro`
        store.save("allegro", TokenSet(pair["access_token"], pair["refresh_token"],
                                       utcnow() + timedelta(seconds=pair["expires_in"])))
        wait_quiet(engine)
    finally:
        pool.stop()
    assert allegro.offer("9000000001").quantity == 3
    with transaction(engine) as s:
        job = s.get(Job, held.id)
        assert job is not None and job.state == "done"
