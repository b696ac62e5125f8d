"""Connector options the hub cannot use stop `hub config check` (and every command) with exit 2 and one
line naming the file, the key and the value, instead of passing the check and ending a sync or a login
in "internal error"."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import pytest

from connectors.erp import sql
from hub.cli.main import main

WOO = 'kind = "woocommerce"\nconsumer_key = "ck_x"\nconsumer_secret = "cs_x"\n'
ALLEGRO = 'kind = "allegro"\nclient_id = "c"\nclient_secret = "s"\n'
QUERIES = Path(sql.__file__).parent / "examples" / "erp_sql.toml"


def hub(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, err.getvalue()


def config(tmp_path: Path, section: str) -> Path:
    (tmp_path / "feed.csv").write_text("sku;name;stock;price_gross;vat_rate\nA1;x;1;1,50;23\n", encoding="utf-8")
    path = tmp_path / "hub.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/hub.db"\n'
                    f'[connectors.erp]\nkind = "csv"\npath = "{tmp_path}/feed.csv"\nsettle = 0\n{section}',
                    encoding="utf-8")
    return path


CASES = [
    ('[connectors.shop]\nbase_url = "http://127.0.0.1:abc"\n' + WOO,
     "connectors.shop.base_url = 'http://127.0.0.1:abc': the port must be a number from 1 to 65535"),
    ('[connectors.shop]\nbase_url = "http://127.0.0.1:99999"\n' + WOO,
     "connectors.shop.base_url = 'http://127.0.0.1:99999': the port must be a number from 1 to 65535"),
    ('[connectors.shop]\nbase_url = "http://"\n' + WOO,
     "connectors.shop.base_url = 'http://': the address names no host"),
    ('[connectors.allegro]\napi_url = "http://127.0.0.1:x"\n' + ALLEGRO,
     "connectors.allegro.api_url = 'http://127.0.0.1:x': the port must be a number from 1 to 65535"),
    ('[connectors.allegro]\nauth_url = "http://"\n' + ALLEGRO,
     "connectors.allegro.auth_url = 'http://': the address names no host"),
    ('[connectors.allegro]\napi_url = "http://api.example.com"\n' + ALLEGRO,
     "connectors.allegro.api_url = 'http://api.example.com': https is required"),
    (f'[connectors.subiekt]\nkind = "sql"\nurl = "mssql+pyodbc://hub@127.0.0.1:1/ERP"\nqueries = "{QUERIES}"\n',
     "connectors.subiekt.url = 'mssql+pyodbc://hub@127.0.0.1:1/ERP': the database driver pyodbc is not installed: "
     "pip install pyodbc (or use a URL whose driver is)"),
    ('[connectors.shop]\nbase_url = "https://sklep.example.pl"\napi_refund = "no"\n' + WOO,
     "connectors.shop.api_refund = 'no': "),
]


@pytest.mark.parametrize(("section", "line"), CASES, ids=[f"{i}-{c[1].partition(' ')[0]}" for i, c in enumerate(CASES)])
def test_config_check_names_the_option_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, section: str,
                                                   line: str) -> None:
    monkeypatch.setitem(sys.modules, "pyodbc", None)  # as on a machine without it
    path = config(tmp_path, section)
    code, err = hub("--config", str(path), "config", "check")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"hub: {path}: {line}"), err


def test_decimal_comma_yes_is_one_line(tmp_path: Path) -> None:
    path = config(tmp_path, "")
    path.write_text(path.read_text(encoding="utf-8") + 'decimal_comma = "yes"\n', encoding="utf-8")
    code, err = hub("--config", str(path), "config", "check")
    assert (code, err) == (2, f"hub: {path}: connectors.erp.decimal_comma = 'yes': expected true, false or \"auto\"\n")


@pytest.mark.parametrize(("section", "argv"), [
    ('[connectors.shop]\nbase_url = "http://127.0.0.1:abc"\n' + WOO, ("sync", "--full")),
    ('[connectors.allegro]\napi_url = "http://127.0.0.1:x"\n' + ALLEGRO, ("allegro", "login", "allegro")),
    ('[connectors.allegro]\nauth_url = "http://"\n' + ALLEGRO, ("allegro", "login", "allegro")),
])
def test_the_commands_that_ended_in_internal_error(tmp_path: Path, section: str, argv: tuple[str, ...]) -> None:
    path = config(tmp_path, "")
    assert hub("--config", str(path), "init")[0] == 0
    path.write_text(path.read_text(encoding="utf-8") + section, encoding="utf-8")
    code, err = hub("--config", str(path), *argv)
    assert code == 2 and err.count("\n") == 1 and "internal error" not in err, err
    assert err.startswith(f"hub: {path}: connectors.")
