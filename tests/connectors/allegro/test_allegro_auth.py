"""OAuth: refresh once under concurrency, revocation, the device flow and `hub allegro login`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from connectors.allegro.auth import AllegroAuth, LoginFailed
from connectors.allegro.simulator import AllegroSimulator
from hub.cli.main import main
from hub.kernel.errors import LoginNeeded
from hub.platform.credentials import TokenStore
from hub.platform.db import make_engine


def in_two_threads(fn: Callable[[], Any]) -> list[Any]:
    barrier = threading.Barrier(2)
    out: list[Any] = [None, None]

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = fn()
        except Exception as exc:  # handed to the test, not lost in the thread
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return out


def test_refresh_happens_once_for_two_threads(make_channel, sim: AllegroSimulator) -> None:
    sim.add_offers(3)
    channel, validating = make_channel(token_ttl=60)  # inside the 5-minute margin: refresh before use
    before = channel.auth.store.load(channel.name)
    listed = in_two_threads(lambda: len(list(channel.listings())))
    assert listed == [3, 3]
    assert sim.refreshes == 1
    after = channel.auth.store.load(channel.name)
    assert after is not None and before is not None
    assert after.refresh_token != before.refresh_token  # the new pair was stored (the old one is dead)
    assert after.expires_at > before.expires_at
    assert [p for _, p, _ in validating.checked].count("/auth/oauth/token") == 1


def test_two_channels_of_one_account_refresh_once(make_channel, sim: AllegroSimulator) -> None:
    first, _ = make_channel(token_ttl=60)
    second, _ = make_channel(logged_in=False)  # another connector instance on the same account and database
    tokens = [first.auth.access_token(), second.auth.access_token()]
    assert tokens[0] == tokens[1] and sim.refreshes == 1


def test_revoked_login_raises_login_needed(make_channel, sim: AllegroSimulator) -> None:
    channel, _ = make_channel(token_ttl=60)
    sim.revoke()
    with pytest.raises(LoginNeeded, match="hub allegro login"):
        list(channel.listings())
    assert channel.auth.store.status(channel.name) == "login-needed"
    with pytest.raises(LoginNeeded):  # held until an operator logs in again; no more vendor calls
        channel.auth.access_token()


def test_rejected_token_is_refreshed_once_and_the_call_retried(make_channel, sim: AllegroSimulator) -> None:
    sim.add_offers(1)
    channel, _ = make_channel()
    sim.expire_access_tokens()  # the vendor ended the token early; our store still thinks it is good
    assert len(list(channel.listings())) == 1
    assert sim.refreshes == 1
    assert [r.status for r in sim.requests if r.path == "/sale/offers"] == [401, 200]


def test_revoked_access_token_and_dead_refresh_token(make_channel, sim: AllegroSimulator) -> None:
    channel, _ = make_channel()
    sim.revoke()
    with pytest.raises(LoginNeeded):
        list(channel.listings())
    assert channel.auth.store.status(channel.name) == "login-needed"


def test_device_flow(make_channel, sim: AllegroSimulator) -> None:
    channel, validating = make_channel(logged_in=False)
    sim.device_interval = 0
    auth: AllegroAuth = channel.auth
    device = auth.start_device_flow()
    assert device.user_code and device.verification_uri.endswith("/skojarz-aplikacje")
    polls = 0

    def sleep(_seconds: float) -> None:
        nonlocal polls
        polls += 1
        if polls == 2:
            sim.approve(device.user_code)

    auth._sleep = sleep
    tokens = auth.login(device)
    assert auth.store.load(channel.name) == tokens
    assert [p for _, p, s in validating.checked] == ["/auth/oauth/device"] + ["/auth/oauth/token"] * 3
    assert [s for _, _, s in validating.checked] == [200, 400, 400, 200]

    denied = auth.start_device_flow()
    sim.approve(denied.user_code, deny=True)
    with pytest.raises(LoginFailed, match="access_denied"):
        auth.wait_for_approval(denied)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The CLI configures logging onto the captured stderr; put the previous set-up back afterwards."""
    root = logging.getLogger()
    handlers, level, config = list(root.handlers), root.level, structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**config)


def test_cli_login_against_a_served_simulator(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              restore_logging: None) -> None:
    sim = AllegroSimulator(device_interval=0, auto_approve_after=2)
    base = sim.serve()
    try:
        config = tmp_path / "hub.toml"
        config.write_text(f"""
[database]
url = "{db_url}"
[log]
format = "json"
level = "warning"
[connectors.allegro-main]
kind = "allegro"
api_url = "{base}"
auth_url = "{base}"
client_id = "hub-client"
client_secret = "hub-secret"
""")
        assert main(["--config", str(config), "allegro", "login", "allegro-main"]) == 0
        out, _ = capsys.readouterr()
        device = next(iter(sim._devices.values()))
        assert f"https://allegro.pl/skojarz-aplikacje?code={device.user_code}" in out
        assert device.user_code in out and "Logged in: allegro-main" in out
        engine = make_engine(db_url)
        try:
            stored = TokenStore(engine).load("allegro-main")
        finally:
            engine.dispose()
        assert stored is not None and stored.access_token in sim._access

        assert main(["--config", str(config), "allegro", "login", "nope"]) == 2
        _, err = capsys.readouterr()
        assert err.strip().splitlines() == [
            f"hub: 'nope' is not an Allegro connector in {config} (Allegro connectors: allegro-main)"]
    finally:
        sim.stop()
