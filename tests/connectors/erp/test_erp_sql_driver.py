"""The sql ERP's url is checked at load: SQLAlchemy knows the database and its driver is installed
(without connecting: the ERP's database may be down while the config is checked)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy.dialects.mssql.pyodbc import MSDialect_pyodbc

from connectors.erp import sql
from connectors.erp.sql import SqlOptions
from hub.platform import registry
from hub.platform.config import load

EXAMPLES = Path(sql.__file__).parent / "examples"


def options(url: str) -> SqlOptions:
    return SqlOptions.model_validate({"url": url, "queries": str(EXAMPLES / "erp_sql.toml")})


def url_error(url: str) -> str:
    with pytest.raises(ValidationError) as caught:
        options(url)
    (error,) = caught.value.errors()
    assert error["loc"] == ("url",)
    return str(error["msg"])


def test_a_driver_that_is_not_installed_is_named_with_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyodbc", None)  # `import pyodbc` fails as on a machine without it
    message = url_error("mssql+pyodbc://hub@127.0.0.1:1/ERP")
    assert "the database driver pyodbc is not installed: pip install pyodbc (or use a URL whose driver is)" in message
    assert "pyodbc is not installed" in url_error("mssql://hub@127.0.0.1:1/ERP")  # mssql's default driver


def test_a_driver_that_cannot_be_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise ImportError("libodbc.so.2: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(MSDialect_pyodbc, "import_dbapi", staticmethod(broken))
    message = url_error("mssql+pyodbc://hub@127.0.0.1:1/ERP")
    assert message.endswith("the database driver pyodbc cannot be loaded: ImportError: libodbc.so.2: cannot open "
                            "shared object file: No such file or directory")


def test_an_unknown_database_kind() -> None:
    assert "unknown database kind 'foo'" in url_error("foo://hub@127.0.0.1:1/ERP")
    assert "unknown database kind 'mssql+nodriver'" in url_error("mssql+nodriver://hub@127.0.0.1:1/ERP")


def test_installed_drivers_pass_without_connecting(tmp_path: Path) -> None:
    # nothing listens on port 1 and the sqlite folder does not exist: the check does not connect
    assert options("postgresql://hub@127.0.0.1:1/erp").url == "postgresql://hub@127.0.0.1:1/erp"
    assert options(f"sqlite:///{tmp_path / 'missing' / 'erp.db'}").url.startswith("sqlite:///")


def test_config_check_says_it_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyodbc", None)
    config = tmp_path / "hub.toml"
    config.write_text(f'[connectors.subiekt]\nkind = "sql"\nurl = "mssql+pyodbc://hub@127.0.0.1:1/ERP"\n'
                      f'queries = "{EXAMPLES / "erp_sql.toml"}"\n', encoding="utf-8")
    assert registry.validate_connectors(load(config, environ={})) == [
        f"{config}: connectors.subiekt.url = 'mssql+pyodbc://hub@127.0.0.1:1/ERP': the database driver pyodbc "
        "is not installed: pip install pyodbc (or use a URL whose driver is)"]
