"""Secrets never reach the log, in any shape; log lines inside jobs carry the job's identity."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
import structlog

from hub.platform.config import LogSettings, load
from hub.platform.logs import configure, get_logger, redact

CONFIG_SECRET = "cfg-Sup3rSecretValue"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.payload.sig"


@pytest.fixture
def log_stream(tmp_path: Path) -> io.StringIO:
    from hub.platform import config as hub_config

    hub_config._known_secrets.clear()  # secrets other tests loaded must not mask this test's text
    config = tmp_path / "hub.toml"
    config.write_text('[database]\nurl = "postgresql://hub@db/hub"\npassword = { env = "PW" }\n')
    load(config, environ={"PW": CONFIG_SECRET})  # registers the secret with the redactor
    stream = io.StringIO()
    configure(LogSettings(level="debug", format="json"), stream=stream)
    yield stream
    structlog.contextvars.clear_contextvars()
    logging.getLogger().handlers.clear()


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


SECRETS = [CONFIG_SECRET, TOKEN, "refresh-abc123", "client-s3cr3t", "hunter2pass", "dXNlcjpwYXNz"]


def test_secrets_are_masked_everywhere(log_stream: io.StringIO) -> None:
    log = get_logger("hub.test")
    log.info(
        "calling vendor",
        url=f"https://api.example.test/offers?access_token={TOKEN}&limit=10",
        headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"},
        body={"grant_type": "refresh_token", "refresh_token": "refresh-abc123",
              "nested": [{"client_secret": "client-s3cr3t"}]},
        dsn="postgresql://hub:hunter2pass@db:5432/hub",
        note=f"connected with {CONFIG_SECRET}",
        basic="Authorization: Basic dXNlcjpwYXNz",
    )
    logging.getLogger("httpx").warning(
        "HTTP Request: POST https://user:hunter2pass@auth.example.test/token?client_secret=client-s3cr3t"
    )
    try:
        raise RuntimeError(f"401 for token {TOKEN} and password=hunter2pass")
    except RuntimeError:
        log.exception("request failed")
    text = log_stream.getvalue()
    for secret in SECRETS:
        assert secret not in text, secret
    records = lines(log_stream)
    assert records[0]["headers"]["Accept"] == "application/json"
    assert records[0]["headers"]["Authorization"] == "***"
    assert "limit=10" in records[0]["url"]
    assert records[1]["logger"] == "httpx"
    assert "RuntimeError" in records[2]["exception"]


def test_redact_keeps_ordinary_values() -> None:
    value = {"sku": "ABC-1", "quantity": 3, "price": "19.99", "tokens_left": None, "ok": True}
    assert redact(value, frozenset()) == value


def test_job_context_is_on_every_line(log_stream: io.StringIO) -> None:
    with structlog.contextvars.bound_contextvars(job_id=42, kind="channel.push", connector="shop-1"):
        get_logger("hub.job").info("pushing")
        logging.getLogger("httpx").info("HTTP Request: GET https://shop.example.test/ 200")
    records = lines(log_stream)
    assert len(records) == 2
    for record in records:
        assert (record["job_id"], record["kind"], record["connector"]) == (42, "channel.push", "shop-1")
