"""The layout's rules, checked on every run: import contracts, packaging, declared dependencies."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from setuptools import find_namespace_packages

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# distribution name -> the module it is imported as
IMPORT_NAME = {"psycopg": "psycopg", "python-stdnum": "stdnum", "prometheus-client": "prometheus_client",
               "pytest-xdist": "xdist", "openapi-core": "openapi_core", "import-linter": "importlinter"}
# declared before their first use, with the issue that uses them
RESERVED = {"zeep": "the carriers' SOAP APIs (DPD, Poczta Polska): the shipping issue"}
# run as commands or loaded by another package, never imported by name (psycopg: SQLAlchemy's
# driver for postgresql+psycopg URLs)
TOOLS = {"ruff", "pytest-xdist", "import-linter", "vulture", "psycopg"}


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter in its own process (it reconfigures logging), on the tree at ``root``."""
    return subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True, check=False)


def test_import_contracts_hold() -> None:
    """hub never imports connectors or the demo; layers point one way; capabilities use each other's
    public names only. The contracts live in pyproject.toml ([tool.importlinter])."""
    run = _lint_imports(ROOT)
    assert run.returncode == 0, run.stdout


def test_the_contracts_catch_a_capability_reaching_into_another(tmp_path: Path) -> None:
    """The same contracts on a copy of the tree in which orders imports a listings module: broken."""
    for name in ("hub", "connectors", "demo"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "_m*"))
    target = tmp_path / "hub" / "orders" / "intake.py"
    target.write_text(target.read_text() + "\nfrom hub.listings.bindings import offer_skus  # noqa\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    run = _lint_imports(tmp_path)
    assert run.returncode == 1, run.stdout
    assert "hub.orders.intake -> hub.listings.bindings" in run.stdout


def test_no_code_in_hub_that_only_tests_call() -> None:
    """vulture over hub/, connectors/ and demo/ (never tests/): a function, class or method of hub/
    that none of them uses is dead or used only by tests. Reached-by-framework exceptions are listed,
    each with its reason, in tests/support/vulture_whitelist.py."""
    run = subprocess.run(
        [str(Path(sys.executable).parent / "vulture"), "hub", "connectors", "demo",
         "tests/support/vulture_whitelist.py", "--min-confidence", "60",
         "--ignore-decorators", "@field_validator,@model_validator,@event.listens_for"],
        cwd=ROOT, capture_output=True, text=True, check=False)
    unused = [line for line in run.stdout.splitlines()
              if line.startswith("hub/") and re.search(r"unused (function|class|method|property)", line)]
    assert unused == []


def _python_dirs(top: str) -> set[str]:
    return {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / top).rglob("*.py")
            if "__pycache__" not in p.parts}


def test_the_wheel_finds_every_package_by_itself() -> None:
    """No package list to forget: every folder with Python code under hub/, connectors/ and demo/ is
    found, and so are the migrations and the shipped mappings (symlinked into hub/)."""
    find = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    found = set(find_namespace_packages(where=str(ROOT), include=find["include"]))
    wanted = _python_dirs("hub") | _python_dirs("connectors") | _python_dirs("demo")
    assert wanted - found == set()
    assert {"hub._migrations", "hub._migrations.versions", "hub._mappings"} <= found


def _imported_top_modules(*folders: str) -> set[str]:
    names: set[str] = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module.split(".")[0])
    return names


def _dist_name(requirement: str) -> str:
    for stop in "[<>=!~; ":
        requirement = requirement.split(stop)[0]
    return requirement.strip().lower()


@pytest.mark.parametrize("group", ["runtime", "test"])
def test_every_declared_dependency_is_used(group: str) -> None:
    project = PYPROJECT["project"]
    if group == "runtime":
        declared = [_dist_name(r) for r in project["dependencies"]]
        used = _imported_top_modules("hub", "connectors", "demo", "alembic")
    else:
        declared = [_dist_name(r) for r in project["optional-dependencies"]["test"]]
        used = _imported_top_modules("tests", "bench")
    unused = [name for name in declared if name not in RESERVED and name not in TOOLS
              and IMPORT_NAME.get(name, name.replace("-", "_")) not in used]
    assert unused == []
