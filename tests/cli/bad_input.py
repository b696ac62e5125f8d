"""The catalogue of bad input: each case a kind of mistake a seller or an operator makes, what the hub
answers (exit code and the one line it prints, or the row it quarantines) and a runner for it.

`tests/cli/test_bad_input.py` holds the hub to every case; ``python -m tests.cli.bad_input`` prints
the catalogue as a table (the closing note of the issue that asked for it carries one).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from hub.cli.main import main

_EXAMPLE_QUERIES = Path(__file__).resolve().parents[2] / "connectors" / "erp" / "examples" / "erp_sql.toml"
GOOD_FEED = "sku;name;stock;price_gross;vat_rate;ean\nA1;Kubek;5;19,99;23;\nB2;Talerz;2;9,50;8;\n"


@dataclass(frozen=True)
class Case:
    area: str  # config, mappings, feed, competitors, cli, database, vendor
    what: str  # the bad input, in words
    argv: tuple[str, ...]  # {config} and {tmp} are filled in
    exit: int
    expect: str  # a part of the one line on stderr; for exit 0, of the quarantined row's reason or stdout
    config: str = ""  # added to the base config
    files: Mapping[str, str | bytes] = field(default_factory=dict)  # relative path -> content ({tmp} filled in)
    init: bool = True  # run `hub init` first
    before: tuple[tuple[str, ...], ...] = ()  # commands run (and required to succeed) before argv
    quarantine: bool = False  # exit 0 and the row's reason in `hub erp rejects`
    env: Mapping[str, str] = field(default_factory=dict)
    # a loopback HTTP server answering every request with (status, content type, body): a vendor's answer
    vendor: tuple[int, str, bytes] | None = None


def _base_config(tmp: Path, vendor_url: str | None) -> str:
    text = (f'[database]\nurl = "sqlite:///{tmp}/hub.db"\n[mappings]\ndir = "{tmp}/maps"\n'
            f'[connectors.erp]\nkind = "csv"\npath = "{tmp}/feed.csv"\nsettle = 0\n')
    if vendor_url is not None:
        text += (f'[connectors.shop]\nkind = "woocommerce"\nbase_url = "{vendor_url}"\nconsumer_key = "ck_x"\n'
                 'consumer_secret = "cs_secret_value"\nattempts = 1\n')
    return text


@contextlib.contextmanager
def _vendor(answer: tuple[int, str, bytes] | None) -> Iterator[str | None]:
    if answer is None:
        yield None
        return
    status, content_type, body = answer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-WP-Total", "1")
            self.send_header("X-WP-TotalPages", "1")
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_PUT = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _call(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


@dataclass(frozen=True)
class Result:
    exit: int
    line: str  # the one stderr line, or the quarantined row's reason, or stdout
    stderr: str


def run_case(case: Case, tmp: Path) -> Result:
    """Set the case up in ``tmp`` and run it; the answer as the hub gave it."""
    (tmp / "maps").mkdir(exist_ok=True)
    (tmp / "feed.csv").write_text(GOOD_FEED, encoding="utf-8")
    for name, content in case.files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content.replace("{tmp}", str(tmp)), encoding="utf-8")
    with _vendor(case.vendor) as url:
        config = tmp / "hub.toml"
        if case.init:  # the database as the base config makes it: the case's mistake comes after
            config.write_text(_base_config(tmp, url), encoding="utf-8")
            code, _, err = _call(["--config", str(config), "init"])
            assert code == 0, err
        config.write_text(_base_config(tmp, url) + case.config.replace("{tmp}", str(tmp)), encoding="utf-8")
        def filled(args: tuple[str, ...]) -> list[str]:
            return [a.replace("{config}", str(config)).replace("{tmp}", str(tmp)) for a in args]

        with _environment({k: v.replace("{tmp}", str(tmp)) for k, v in case.env.items()}):
            for step in case.before:
                code, _, err = _call(filled(step))
                assert code == 0, err
            code, out, err = _call(filled(case.argv))
        if case.quarantine:
            _, rejects, _ = _call(["--config", str(config), "erp", "rejects", "--json"])
            reasons = [f"{r['record']}: {r['field']} = {r['value']!r}: {r['reason']}" for r in json.loads(rejects)]
            return Result(code, " | ".join(reasons), err)
        line = err.strip() if err.strip() else " / ".join(x.strip() for x in out.strip().splitlines())
        return Result(code, line, err)


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _feed_row(row: str) -> dict[str, str]:
    return {"feed.csv": f"sku;name;stock;price_gross;vat_rate;ean\nA1;Kubek;5;19,99;23;\n{row}\n"}


def _sync() -> tuple[str, ...]:
    return ("--config", "{config}", "sync")


def _full() -> tuple[str, ...]:
    return ("--config", "{config}", "sync", "--full")


def _competitors() -> tuple[str, ...]:
    return ("--config", "{config}", "prices", "competitors", "{tmp}/c.csv")


def _check() -> tuple[str, ...]:
    return ("--config", "{config}", "config", "check")


def _rule(*, on: str, action: str) -> str:
    return f'[[rules]]\nname = "x"\non = ["{on}"]\ndo = [{{ action = "{action}" }}]\n'


def _map(name: str, text: str | bytes) -> dict[str, str | bytes]:
    return {f"maps/{name}": text}


_C = Case
# a WooCommerce channel named "shop" that the mappings cases can name (never called)
_SHOP_CHANNEL = ('[connectors.shop]\nkind = "woocommerce"\nbase_url = "https://shop.example"\nconsumer_key = "ck"\n'
                 'consumer_secret = "cs"\n')
# a channel the competitor cases can name (never called)
_SHOP = ('[connectors.shop2]\nkind = "woocommerce"\nbase_url = "https://shop.example"\nconsumer_key = "ck"\n'
         'consumer_secret = "cs"\n')
CASES: tuple[Case, ...] = (
    # --- the config file -------------------------------------------------------------------------------
    _C("config", "config file missing", ("--config", "{tmp}/nope.toml", "status"), 2, "nope.toml", init=False),
    _C("config", "config path is a folder", ("--config", "{tmp}/maps", "status"), 2, "maps", init=False),
    _C("config", "config not UTF-8", ("--config", "{tmp}/latin.toml", "status"), 2, "not UTF-8 text",
       files={"latin.toml": b'[database]\nurl = "sqlite:///caf\xe9.db"\n'}, init=False),
    _C("config", "config not TOML", ("--config", "{tmp}/bad.toml", "status"), 2, "bad.toml",
       files={"bad.toml": "[database\nurl = 1\n"}, init=False),
    _C("config", "a key written twice", ("--config", "{tmp}/twice.toml", "status"), 2, "twice.toml",
       files={"twice.toml": '[database]\nurl = "sqlite:///a.db"\nurl = "sqlite:///b.db"\n'}, init=False),
    _C("config", "unknown key (a typo)", _check(), 2, "worker.concurency", config="[worker]\nconcurency = 3\n"),
    _C("config", "a number where a number is wanted, as a word", _check(), 2, "worker.concurrency",
       config="[worker]\nconcurrency = \"lots\"\n"),
    _C("config", "worker threads out of range", _check(), 2, "worker.concurrency",
       config="[worker]\nconcurrency = 0\n"),
    _C("config", "a duration that is not one", _check(), 2, "worker.lease", config="[worker]\nlease = \"soon\"\n"),
    _C("config", "a negative duration", _check(), 2, "worker.lease", config="[worker]\nlease = \"-5s\"\n"),
    _C("config", "backoff maximum under its start", _check(), 2, "backoff",
       config="[worker]\nbackoff_initial = \"10m\"\nbackoff_max = \"1m\"\n"),
    _C("config", "a duration of 10^20 days", _check(), 2, "worker.lease = '99999999999999999999d'",
       config='[worker]\nlease = "99999999999999999999d"\n'),
    _C("config", "a duration of NaN", _check(), 2, "worker.lease = nan", config="[worker]\nlease = nan\n"),
    _C("config", "an infinite backoff", _check(), 2, "worker.backoff_max = inf",
       config="[worker]\nbackoff_max = inf\n"),
    _C("config", "a lease in microseconds", _check(), 2, "at least 1s", config='[worker]\nlease = "0.0001ms"\n'),
    _C("config", "a schedule every millisecond", _check(), 2, "schedule.x.every = '1ms'",
       config='[schedule.x]\njob = "sync.plan"\nevery = "1ms"\n'),
    _C("config", "a priority beyond an SQL integer", _check(), 2, "schedule.x.priority",
       config='[schedule.x]\njob = "sync.plan"\nevery = "1m"\npriority = 99999999999999999999999\n'),
    _C("config", "a yes/no written as text", _check(), 2, "expected true or false",
       config='[schedule.x]\njob = "sync.plan"\nevery = "1m"\nenabled = "off"\n'),
    _C("config", "a number written as true", _check(), 2, "worker.concurrency = True",
       config="[worker]\nconcurrency = true\n"),
    _C("config", "a config saved with a byte order mark (accepted)", ("--config", "{tmp}/bom.toml", "config", "check"),
       0, "is valid", files={"bom.toml": b'\xef\xbb\xbf[database]\nurl = "sqlite:///hub.db"\n'}, init=False),
    _C("config", "an override of a section that does not exist", _check(), 2, "environment HUB_WROKER__CONCURRENCY",
       env={"HUB_WROKER__CONCURRENCY": "3"}),
    _C("config", "an in-memory SQLite database", ("--config", "{config}", "init"), 2, "lost when the command ends",
       env={"HUB_DATABASE__URL": "sqlite://"}, init=False),
    _C("config", "a database port that is not a number", ("--config", "{config}", "status"), 2,
       "the port is not a number", env={"HUB_DATABASE__URL": "postgresql://hub@127.0.0.1:notaport/hub"}, init=False),
    _C("config", "a database driver the hub does not have", ("--config", "{config}", "status"), 2,
       "unknown database driver 'sqlitefoo'", env={"HUB_DATABASE__URL": "sqlitefoo:///x.db"}, init=False),
    _C("config", "a password for a SQLite database", _check(), 2, "a SQLite database takes no password",
       config="", env={"HUB_DATABASE__PASSWORD": "secret"}),
    _C("config", "a shop address with a port that is not a number", _check(), 2, "the port must be a number",
       config='[connectors.shop2]\nkind = "woocommerce"\nbase_url = "http://127.0.0.1:abc"\nconsumer_key = "ck"\n'
              'consumer_secret = "cs"\n'),
    _C("config", "a shop address without a host", _check(), 2, "names no host",
       config='[connectors.shop2]\nkind = "woocommerce"\nbase_url = "http://"\nconsumer_key = "ck"\n'
              'consumer_secret = "cs"\n'),
    _C("config", "Allegro over plain http to another host", _check(), 2, "connectors.al.api_url",
       config='[connectors.al]\nkind = "allegro"\nclient_id = "x"\nclient_secret = "y"\n'
              'api_url = "http://api.example.com"\n'),
    _C("config", "an ERP database whose driver is not installed", _check(), 2, "driver pyodbc is not installed",
       config='[connectors.erp2]\nkind = "sql"\nurl = "mssql+pyodbc://hub@127.0.0.1:1/ERP"\n'
              f'queries = "{_EXAMPLE_QUERIES}"\n'),
    _C("config", "a feed option flag written as text", _check(), 2, "connectors.erp.decimal_comma = 'yes'",
       env={"HUB_CONNECTORS__ERP__DECIMAL_COMMA": "yes"}),
    _C("config", "database URL of an unknown kind", ("--config", "{config}", "status"), 2, "database.url",
       config="", files={}, init=False, env={"HUB_DATABASE__URL": "mysql://x/y"}),
    _C("config", "metrics on a public address", _check(), 2, "metrics.host",
       config="[metrics]\nenabled = true\nhost = \"0.0.0.0\"\n"),
    _C("config", "a secret from an unset variable", _check(), 2, "SHOP_SECRET",
       config='[connectors.shop2]\nkind = "woocommerce"\nbase_url = "https://shop.example"\nconsumer_key = "ck"\n'
              'consumer_secret = { env = "SHOP_SECRET" }\n'),
    _C("config", "a secret from a missing file", _check(), 2, "no-such-secret",
       config='[connectors.shop2]\nkind = "woocommerce"\nbase_url = "https://shop.example"\nconsumer_key = "ck"\n'
              'consumer_secret = { file = "{tmp}/no-such-secret" }\n'),
    _C("config", "a connector kind nobody provides", _check(), 2, "connectors.x.kind = 'ftp'",
       config='[connectors.x]\nkind = "ftp"\n'),
    _C("config", "a connector's unknown option", _check(), 2, "connectors.erp.delimter", config="",
       env={"HUB_CONNECTORS__ERP__DELIMTER": ";"}),
    _C("config", "a feed encoding the hub does not read", _check(), 2, "connectors.erp.encoding",
       env={"HUB_CONNECTORS__ERP__ENCODING": "latin-2"}),
    _C("config", "a shop URL over plain http to another host", _check(), 2, "connectors.shop2.base_url",
       config='[connectors.shop2]\nkind = "woocommerce"\nbase_url = "http://shop.example"\nconsumer_key = "ck"\n'
              'consumer_secret = "cs"\n'),
    _C("config", "a shop currency that is not ISO 4217", _check(), 2, "connectors.shop2.currency = 'PLX'",
       config='[connectors.shop2]\nkind = "woocommerce"\nbase_url = "https://shop.example"\nconsumer_key = "ck"\n'
              'consumer_secret = "cs"\ncurrency = "PLX"\n'),
    _C("config", "a schedule entry for a job nobody runs", _check(), 2, "schedule.x",
       config='[schedule.x]\njob = "erp.pol"\nevery = "1m"\n'),
    _C("config", "a schedule payload naming no connector", _check(), 2, "schedule.poll.payload.erp = 'nope'",
       config='[schedule.poll]\njob = "erp.poll"\nevery = "1m"\npayload = { erp = "nope" }\n'),
    _C("config", "a schedule payload missing its key", _check(), 2, "schedule.x.payload.erp: missing (required)",
       config='[schedule.x]\njob = "erp.poll"\nevery = "5s"\n'),
    _C("config", "a schedule payload with a key its job does not take", _check(), 2,
       "schedule.x.payload.bogus = 1: unknown key",
       config='[schedule.x]\njob = "erp.poll"\nevery = "5s"\npayload = { erp = "erp", bogus = 1 }\n'),
    _C("config", "a schedule payload flag that is not true or false", _check(), 2,
       "schedule.x.payload.full = 'yes please'",
       config='[schedule.x]\njob = "erp.poll"\nevery = "5s"\npayload = { erp = "erp", full = "yes please" }\n'),
    _C("config", "a retention written as a duration string", _check(), 2, "schedule.x.payload.keep_seconds = '14d'",
       config='[schedule.x]\njob = "hub.prune_jobs"\nevery = "6h"\npayload = { keep_seconds = "14d" }\n'),
    _C("config", "a job the hub enqueues itself put on a schedule", _check(), 2, "it cannot be scheduled",
       config='[schedule.x]\njob = "sync.push"\nevery = "5s"\n'),
    _C("config", "an environment override with a bad value", _check(), 2, "HUB_WORKER__CONCURRENCY",
       env={"HUB_WORKER__CONCURRENCY": "lots"}),
    _C("config", "the SQLite database's folder missing", ("--config", "{config}", "status"), 2,
       "does not exist (hub init creates it", env={"HUB_DATABASE__URL": "sqlite:////nonexistent-dir/x/hub.db"},
       init=False),
    _C("config", "ERP feed path missing (warning, exit 0)", _check(), 0, "warning:", files={},
       env={"HUB_CONNECTORS__ERP__PATH": "/nonexistent/export.csv"}),
    # --- mappings ------------------------------------------------------------------------------------------
    _C("mappings", "an unknown mappings file", _check(), 2, "unknown mappings file", files=_map("vat_rates.toml", "")),
    _C("mappings", "mappings not TOML", _check(), 2, "invalid TOML", files=_map("pricing.toml", "[defaults\n")),
    _C("mappings", "mappings not UTF-8", _check(), 2, "pricing.toml", files=_map("pricing.toml", b"# \xff\n")),
    _C("mappings", "money as a float", _check(), 2, "defaults.fixed_fee",
       files=_map("pricing.toml", "[defaults]\nfixed_fee = 1.5\n")),
    _C("mappings", "a rounding rule that is not one", _check(), 2, "defaults.rounding",
       files=_map("pricing.toml", '[defaults]\nrounding = "0.999"\n')),
    _C("mappings", "a commission no price survives", _check(), 2, "defaults.commission_pct = '85'",
       files=_map("pricing.toml", '[defaults]\ncommission_pct = "85"\n')),
    _C("mappings", "a fee over the ceiling", _check(), 2, "no price can clear the floor",
       files=_map("pricing.toml", '[defaults]\nfixed_fee = "50"\nceiling = "40"\n')),
    _C("mappings", "a fee beyond a billion", _check(), 2, "defaults.fixed_fee",
       files=_map("pricing.toml", '[defaults]\nfixed_fee = "99999999999999999999999999999999999999.00"\n')),
    _C("mappings", "pricing for a channel that does not exist", _check(), 2, "channels.nope",
       files=_map("pricing.toml", '[channels.nope]\nmarkup_pct = "5"\n')),
    _C("mappings", "stock rules for a channel that does not exist", _check(), 2, "channels.nope",
       files=_map("stock.toml", "[channels.nope]\nsafety_buffer = 1\n")),
    _C("mappings", "a stock percentage over 100", _check(), 2, "defaults.percent",
       files=_map("stock.toml", "[defaults]\npercent = 150\n")),
    _C("mappings", "an automation event that does not exist", _check(), 2, "order.payed",
       files=_map("automation.toml", _rule(on="order.payed", action="send_to_erp"))),
    _C("mappings", "an automation action that does not exist", _check(), 2, "send_to_ERP",
       files=_map("automation.toml", _rule(on="order.paid", action="send_to_ERP"))),
    _C("mappings", "an automation rule for a channel that does not exist", _check(), 2,
       "rules.0.when.channel = 'shopp'", config=_SHOP_CHANNEL,
       files=_map("automation.toml", '[[rules]]\nname = "x"\non = ["order.paid"]\nwhen = { channel = ["shopp"] }\n'
                                     'do = [{ action = "send_to_erp" }]\n')),
    _C("mappings", "an amount range no order is in", _check(), 2, "min_amount 500 is over max_amount 100",
       files=_map("automation.toml", '[[rules]]\nname = "x"\non = ["order.paid"]\n'
                                     'when = { min_amount = "500", max_amount = "100" }\n'
                                     'do = [{ action = "send_to_erp" }]\n')),
    _C("mappings", "a country written as a name", _check(), 2, "rules.0.when.country.0 = 'Poland'",
       files=_map("automation.toml", '[[rules]]\nname = "x"\non = ["order.paid"]\nwhen = { country = ["Poland"] }\n'
                                     'do = [{ action = "send_to_erp" }]\n')),
    _C("mappings", "an action given a setting it does not take", _check(), 2, "send_to_erp takes no status",
       files=_map("automation.toml", '[[rules]]\nname = "x"\non = ["order.paid"]\n'
                                     'do = [{ action = "send_to_erp", status = "shipped" }]\n')),
    _C("mappings", "a yes/no condition written as text", _check(), 2, "cash_on_delivery",
       files=_map("automation.toml", '[[rules]]\nname = "x"\non = ["order.paid"]\n'
                                     'when = { cash_on_delivery = "yes" }\ndo = [{ action = "send_to_erp" }]\n')),
    _C("mappings", "status maps for a channel kind that does not exist", _check(), 2, "kinds.woocomerce",
       files=_map("order_status.toml", '[kinds.woocomerce.inbound]\nprocessing = "paid"\n')),
    _C("mappings", "an outbound status left empty", _check(), 2, "outbound shipped = ''",
       files=_map("order_status.toml", '[kinds.woocommerce.outbound]\nshipped = ""\n')),
    _C("mappings", "a status mapping to a status the hub lacks", _check(), 2,
       "inbound BOUGHT = 'fresh' is not one of new",
       files=_map("order_status.toml", '[kinds.allegro.inbound]\nBOUGHT = "fresh"\n')),
    _C("mappings", "status overrides for an account that does not exist", _check(), 2, "accounts.nope",
       files=_map("order_status.toml", '[accounts.nope.inbound]\nREADY = "paid"\n')),
    # --- the ERP feed ---------------------------------------------------------------------------------------
    _C("feed", "feed file missing", _sync(), 1, "no such file or folder", files={}, init=True,
       env={"HUB_CONNECTORS__ERP__PATH": "/nonexistent/export.csv"}),
    _C("feed", "feed folder without a CSV file", _sync(), 1, "no *.csv file", files={"export/readme.txt": "x"},
       env={"HUB_CONNECTORS__ERP__PATH": "{tmp}/export"}),
    _C("feed", "a required column missing", _sync(), 0, "required column missing", quarantine=True,
       files={"feed.csv": "sku;name;price_gross;vat_rate\nA1;Kubek;19,99;23\n"}),
    _C("feed", "header only", _sync(), 0, "no rows", quarantine=True,
       files={"feed.csv": "sku;name;stock;price_gross;vat_rate\n"}),
    _C("feed", "windows-1250 read as UTF-8", _sync(), 0, "looks like windows-1250", quarantine=True,
       files={"feed.csv": "sku;name;stock;price_gross;vat_rate\nA1;Żółw;1;2,50;5\n".encode("windows-1250")}),
    _C("feed", "UTF-8 read as windows-1250", _sync(), 0, "the file is UTF-8", quarantine=True,
       files={"feed.csv": "sku;name;stock;price_gross;vat_rate\nA1;Żółw;1;2,50;5\n"},
       env={"HUB_CONNECTORS__ERP__ENCODING": "windows-1250"}),
    _C("feed", "negative stock", _sync(), 0, "stock = '-2'", quarantine=True, files=_feed_row("B2;Talerz;-2;9,50;8;")),
    _C("feed", "fractional stock", _sync(), 0, "stock = '2.5'", quarantine=True,
       files=_feed_row("B2;Talerz;2.5;9,50;8;")),
    _C("feed", "price zero", _sync(), 0, "price_gross = '0'", quarantine=True, files=_feed_row("B2;Talerz;2;0;8;")),
    _C("feed", "price with three decimals", _sync(), 0, "price_gross = '9,505'", quarantine=True,
       files=_feed_row("B2;Talerz;2;9,505;8;")),
    _C("feed", "price with an exponent", _sync(), 0, "price_gross = '1e3'", quarantine=True,
       files=_feed_row("B2;Talerz;2;1e3;8;")),
    _C("feed", "price NaN", _sync(), 0, "price_gross = 'NaN'", quarantine=True, files=_feed_row("B2;Talerz;2;NaN;8;")),
    _C("feed", "price with a currency sign", _sync(), 0, "price_gross = '9,50 zł'", quarantine=True,
       files=_feed_row("B2;Talerz;2;9,50 zł;8;")),
    _C("feed", "a price too large for the column", _sync(), 0, "price_gross = '99999999999999'", quarantine=True,
       files=_feed_row("B2;Talerz;2;99999999999999;8;")),
    _C("feed", "a VAT rate Poland does not have", _sync(), 0, "vat_rate = '22'", quarantine=True,
       files=_feed_row("B2;Talerz;2;9,50;22;")),
    _C("feed", "an EAN with a wrong check digit", _sync(), 0, "ean = '5901234123458'", quarantine=True,
       files=_feed_row("B2;Talerz;2;9,50;8;5901234123458")),
    _C("feed", "an EAN a spreadsheet turned into a number", _sync(), 0, "ean = '5,90123E+12'", quarantine=True,
       files=_feed_row("B2;Talerz;2;9,50;8;5,90123E+12")),
    _C("feed", "a currency that is not ISO 4217", _sync(), 0, "currency = 'PLX'", quarantine=True,
       files={"feed.csv": "sku;name;stock;price_gross;vat_rate;currency\nA1;Kubek;5;19,99;23;PLN\n"
                          "B2;Talerz;2;9,50;8;PLX\n"}),
    _C("feed", "an empty SKU", _sync(), 0, "sku = ''", quarantine=True, files=_feed_row(";Talerz;2;9,50;8;")),
    _C("feed", "a SKU over 100 characters", _sync(), 0, "sku", quarantine=True,
       files=_feed_row(f"{'X' * 101};Talerz;2;9,50;8;")),
    _C("feed", "a control character in a name", _sync(), 0, "control character", quarantine=True,
       files=_feed_row("B2;Tal\x01erz;2;9,50;8;")),
    _C("feed", "the same SKU and warehouse twice", _sync(), 0, "A1", quarantine=True,
       files=_feed_row("A1;Kubek;7;19,99;23;")),
    _C("feed", "a row with more values than the header", _sync(), 0, "unquoted", quarantine=True,
       files=_feed_row("B2;Talerz;2;9,50;8;;extra;more")),
    _C("feed", "a cut-off row", _sync(), 0, "cut-off line", quarantine=True, files=_feed_row("B2;Talerz")),
    _C("feed", "a JSON line with a key twice", _sync(), 0, "appears more than once", quarantine=True,
       env={"HUB_CONNECTORS__ERP__KIND": "jsonl", "HUB_CONNECTORS__ERP__PATH": "{tmp}/feed.jsonl"},
       files={"feed.jsonl": '{"sku": "A1", "name": "x", "stock": 1, "price_gross": "2.00", "vat_rate": "23"}\n'
                            '{"sku": "B2", "name": "y", "stock": 1, "price_gross": "2.00", "vat_rate": "23", '
                            '"sku": "B9"}\n'}),
    # --- competitor prices -----------------------------------------------------------------------------------
    _C("competitors", "file missing", ("--config", "{config}", "prices", "competitors", "{tmp}/none.csv"), 2,
       "none.csv"),
    _C("competitors", "a folder", ("--config", "{config}", "prices", "competitors", "{tmp}/maps"), 2,
       "is a folder"),
    _C("competitors", "not UTF-8", ("--config", "{config}", "prices", "competitors", "{tmp}/c.csv"), 2,
       "not utf-8", files={"c.csv": b"channel,sku,price\nshop,A1,1\xff\n"}),
    _C("competitors", "a price of NaN, the only row", ("--config", "{config}", "prices", "competitors",
       "{tmp}/c.csv"), 2, "price = 'NaN'", config=_SHOP, files={"c.csv": "channel;sku;price\nshop2;A1;NaN\n"},
       before=(("--config", "{config}", "sync"),)),
    _C("competitors", "an exponent and a SKU not in the catalogue beside a good row", ("--config", "{config}", "prices",
       "competitors", "{tmp}/c.csv"), 0, "imported 1 competitor prices", config=_SHOP,
       files={"c.csv": "channel;sku;price\nshop2;A1;1e3\nshop2;NOPE;10,00\nshop2;A1;15,00\n"},
       before=(("--config", "{config}", "sync"),)),
    _C("competitors", "a channel that does not exist", ("--config", "{config}", "prices", "competitors",
       "{tmp}/c.csv"), 2, "channel = 'nowhere'", files={"c.csv": "channel;sku;price\nnowhere;A1;10,00\n"}),
    _C("competitors", "columns missing", ("--config", "{config}", "prices", "competitors", "{tmp}/c.csv"), 2,
       "c.csv", files={"c.csv": "sku;price\nA1;10,00\n"}),
    _C("competitors", "the same channel and SKU twice", _competitors(), 0, "on line 2 already", config=_SHOP,
       files={"c.csv": "channel;sku;price\nshop2;A1;19,99\nshop2;A1;5,00\n"}, before=(_sync(),)),
    _C("competitors", "a row with a value more than the header", _competitors(), 2, "the row has 4 values",
       config=_SHOP, files={"c.csv": "channel,sku,price\nshop2,A1,19.99,extra\n"}, before=(_sync(),)),
    _C("competitors", "a header and no rows", _competitors(), 2, "no rows under the header", config=_SHOP,
       files={"c.csv": "channel;sku;price\n"}),
    _C("competitors", "separated by tabs", _competitors(), 2, "does not name the columns channel, sku, price",
       config=_SHOP, files={"c.csv": "channel\tsku\tprice\nshop2\tA1\t1.00\n"}),
    _C("competitors", "a price beyond the column", _competitors(), 2, "must be under 1,000,000,000,000",
       config=_SHOP, files={"c.csv": "channel;sku;price\nshop2;A1;12345678901234567.89\n"}, before=(_sync(),)),
    # --- command-line arguments ------------------------------------------------------------------------------
    _C("cli", "an unknown command", ("--config", "{config}", "synk"), 2, "synk"),
    _C("cli", "a job id that is not a number", ("--config", "{config}", "jobs", "show", "abc"), 2, "'abc'"),
    _C("cli", "a job id beyond 64 bits", ("--config", "{config}", "jobs", "show", str(2**64)), 2,
       "expected a number up to 9223372036854775807"),
    _C("cli", "a negative --limit", ("--config", "{config}", "jobs", "list", "--limit", "-1"), 2, "'-1'"),
    _C("cli", "a job that does not exist", ("--config", "{config}", "jobs", "show", "999"), 2, "999"),
    _C("cli", "an order that does not exist", ("--config", "{config}", "orders", "show", "999"), 2, "999"),
    _C("cli", "a SKU not in the catalogue", ("--config", "{config}", "stock", "show", "NOPE"), 2, "'NOPE'"),
    _C("cli", "--channel naming no channel", ("--config", "{config}", "sync", "--channel", "nope"), 2, "'nope'"),
    _C("cli", "--erp naming no ERP", ("--config", "{config}", "erp", "rejects", "--erp", "nope"), 2, "'nope'"),
    _C("cli", "--timeout not a number", ("--config", "{config}", "run", "--once", "--timeout", "soon"), 2, "soon"),
    _C("cli", "--kind given to retry one job", ("--config", "{config}", "jobs", "retry", "5", "--kind", "sync.push"),
       2, "--kind sync.push goes with --dead"),
    _C("cli", "a return status that does not exist", ("--config", "{config}", "returns", "list", "--status", "bogus"),
       2, "invalid choice: 'bogus'"),
    _C("cli", "a refund by hand recorded for a return that does not exist",
       ("--config", "{config}", "returns", "refunded", "999", "--ref", "przelew 12"), 2, "no return with id 999"),
    _C("cli", "reservations of a SKU not in the catalogue", ("--config", "{config}", "reservations", "NOSUCH"), 2,
       "no SKU 'NOSUCH'"),
    _C("cli", "a negative --timeout", ("--config", "{config}", "sync", "--timeout", "-5"), 2,
       "expected a number greater than 0, got '-5'"),
    _C("cli", "a NaN --timeout", ("--config", "{config}", "sync", "--timeout", "nan"), 2, "got 'nan'"),
    _C("cli", "prices explained with no channel configured", ("--config", "{config}", "prices", "explain", "A1"), 2,
       "no channel connector is configured"),
    _C("cli", "hub demo --dir naming a file", ("demo", "--dir", "{tmp}/feed.csv"), 2, "is not a folder"),
    # --- the database -----------------------------------------------------------------------------------------
    _C("database", "a file that is not SQLite", ("--config", "{config}", "status"), 2, "not a SQLite database",
       files={"notes.db": "my notes\n" * 500}, env={"HUB_DATABASE__URL": "sqlite:///{tmp}/notes.db"}, init=False),
    _C("database", "a database never initialised", ("--config", "{config}", "status"), 2, "hub init", init=False),
    _C("database", "PostgreSQL not listening", ("--config", "{config}", "status"), 1, "127.0.0.1",
       env={"HUB_DATABASE__URL": "postgresql://hub@127.0.0.1:1/hub"}, init=False),
    # --- what a vendor answers --------------------------------------------------------------------------------
    _C("vendor", "the shop answers 500", _full(), 1, "channel shop",
       vendor=(500, "application/json", b'{"code":"internal_server_error","message":"boom"}')),
    _C("vendor", "the shop answers HTML instead of JSON", ("--config", "{config}", "sync", "--full"), 1,
       "channel shop", vendor=(200, "text/html", b"<html>maintenance</html>")),
    _C("vendor", "the shop rejects the key (401)", _full(), 1, "channel shop",
       vendor=(401, "application/json", b'{"code":"woocommerce_rest_cannot_view","message":"Sorry"}')),
    _C("vendor", "the shop answers JSON of the wrong shape", _full(), 1, "expected a JSON list, got dict",
       vendor=(200, "application/json", b'{"products": []}')),
    _C("vendor", "truncated JSON", _full(), 1, "HTTP 200 without a JSON body",
       vendor=(200, "application/json", b'[{"id": 1, "sku": ')),
    _C("vendor", "a list item that is not an object", _full(), 1, "an item of the list is not an object: 'a'",
       vendor=(200, "application/json", b'["a", "b"]')),
    _C("vendor", "a product without an id", _full(), 1, "product without a usable id: id = None",
       vendor=(200, "application/json", b'[{"sku": "A1", "type": "simple", "regular_price": "1.00"}]')),
    _C("vendor", "a product id that is not a number", _full(), 1, "id = 'x' (expected a positive integer)",
       vendor=(200, "application/json", b'[{"id": "x", "sku": "A1", "type": "simple", "regular_price": "1.00"}]')),
    _C("vendor", "a price as a JSON number (the docs say string)", _full(), 1, "regular_price = 19.99",
       vendor=(200, "application/json", b'[{"id": 1, "sku": "A1", "type": "simple", "regular_price": 19.99, '
                                         b'"stock_quantity": 1}]')),
    _C("vendor", "a price that is not a number", _full(), 1, "regular_price = 'abc'",
       vendor=(200, "application/json", b'[{"id": 1, "sku": "A1", "type": "simple", "regular_price": "abc", '
                                         b'"stock_quantity": 1}]')),
    _C("vendor", "a stock quantity that is not an integer", _full(), 1, "stock_quantity = 'many'",
       vendor=(200, "application/json", b'[{"id": 1, "sku": "A1", "type": "simple", "regular_price": "1.00", '
                                         b'"stock_quantity": "many"}]')),
    _C("vendor", "no WooCommerce at the address (404 rest_no_route)", _full(), 1, "is WooCommerce active at base_url",
       vendor=(404, "application/json", b'{"code":"rest_no_route","message":"No route was found"}')),
    _C("vendor", "a redirect without a Location", _full(), 1, "set base_url to the shop's final address",
       vendor=(301, "text/html", b"")),
    _C("vendor", "rate limited (429)", _full(), 1, "HTTP 429: try again later",
       vendor=(429, "application/json", b"{}")),
)


def run_all(cases: tuple[Case, ...] = CASES) -> Iterator[tuple[Case, Result]]:
    """Each case in a fresh folder, whose path the answers show as DIR."""
    for case in cases:
        with tempfile.TemporaryDirectory() as tmp:
            result = run_case(case, Path(tmp))
            yield case, Result(result.exit, result.line.replace(tmp, "DIR"), result.stderr)


def table(rows: Callable[[], Iterator[tuple[Case, Result]]] = run_all) -> str:
    lines = ["| # | area | bad input | exit | what the hub says |", "| --- | --- | --- | --- | --- |"]
    for number, (case, result) in enumerate(rows(), 1):
        said = result.line.replace("|", "\\|")
        if case.quarantine:
            said = f"row quarantined: {said}"
        lines.append(f"| {number} | {case.area} | {case.what} | {result.exit} | {said} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(table() + "\n")
