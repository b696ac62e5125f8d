"""The registry entry, the options and the second layer of XML hardening (zeep's own settings)."""

from __future__ import annotations

import ast
import importlib
import tomllib
from pathlib import Path

import pytest
import zeep.exceptions
import zeep.loader
from dpd_testkit import options
from pydantic import ValidationError

from connectors.carriers.dpd import SPEC, DpdOptions
from connectors.carriers.dpd.carrier import DpdCarrier
from connectors.carriers.dpd.client import SETTINGS
from connectors.carriers.dpd.simulator import BILLION_LAUGHS, EXTERNAL_ENTITY, DpdSimulator
from hub.kernel.ports.capability import Capability
from hub.kernel.ports.carrier import Carrier
from hub.platform import registry

PACKAGE = Path(SPEC.factory.__code__.co_filename).parent


def test_the_entry_point_names_this_spec() -> None:
    """pyproject.toml is the lead's file: while it declares the kind, it must point here."""
    pyproject = tomllib.loads((PACKAGE.parents[2] / "pyproject.toml").read_text())
    declared = pyproject["project"]["entry-points"]["hub.connectors"].get("dpd")
    if declared is None:
        pytest.skip("pyproject.toml declares no `dpd` entry point at the moment")
    module, _, attribute = declared.partition(":")
    assert getattr(importlib.import_module(module), attribute) is SPEC


def test_the_spec_is_a_carrier_without_tracking() -> None:
    installed = registry.get("dpd")
    registry.register(SPEC)  # as the entry point does
    try:
        assert registry.get("dpd") is SPEC
    finally:
        if installed is None:
            registry.unregister("dpd")
    assert SPEC.role == "carrier" and SPEC.options_model is DpdOptions
    assert Capability.TRACKING not in SPEC.capabilities
    assert {Capability.LABEL_PDF, Capability.LABEL_ZPL, Capability.PICKUP, Capability.CASH_ON_DELIVERY,
            Capability.LOOKUP_BY_REFERENCE} <= SPEC.capabilities


@pytest.mark.parametrize("module", ["__init__.py", "options.py"])
def test_loading_the_entry_point_does_not_load_zeep(module: str) -> None:
    """Every CLI start loads the entry point: its modules import zeep, lxml and the WSDL only in the factory."""
    tree = ast.parse((PACKAGE / module).read_text())
    imported = [alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module or "" for node in tree.body if isinstance(node, ast.ImportFrom)]
    heavy = ("zeep", "lxml", "requests", "connectors.carriers.dpd.client", "connectors.carriers.dpd.carrier",
             "connectors.carriers.dpd.simulator", "connectors.carriers.dpd.mapping")
    assert imported and not [name for name in imported if name.startswith(heavy)]


def test_the_factory_builds_a_carrier_from_config_values() -> None:
    sim = DpdSimulator()
    values = {"login": "test", "password": "thetu4Ee", "master_fid": 1495, "environment": "demo"}
    carrier = SPEC.factory("dpd-main", values, {"transport": sim.adapter()})
    assert isinstance(carrier, DpdCarrier) and isinstance(carrier, Carrier)
    assert carrier.client.address == "https://dpdservicesdemo.dpd.com.pl/DPDPackageObjServicesService/DPDPackageObjServices"
    assert carrier.services() == ("classic", "dpd-pickup", "guarantee-0930", "guarantee-1200", "guarantee-saturday")
    carrier.close()


def test_options_refuse_what_would_leak_or_not_work() -> None:
    assert options(environment="production", service_url=None).address.startswith("https://dpdservices.dpd.com.pl/")
    assert options(sender_fid=None).fid == 1495 and options(sender_fid=2001).fid == 2001
    with pytest.raises(ValidationError, match="https is required"):
        options(service_url="http://dpdservices.example.pl/x")
    assert options(service_url="http://127.0.0.1:8080/x").address == "http://127.0.0.1:8080/x"
    with pytest.raises(ValidationError, match="unknown DPD service code"):
        options(services=["classic", "overnight"])
    with pytest.raises(ValidationError):
        options(master_fid=0)
    assert "thetu4Ee" not in repr(options())  # the password never shows


@pytest.mark.parametrize(("document", "refusal"), [
    (BILLION_LAUGHS, zeep.exceptions.XMLSyntaxError),  # libxml2's entity amplification limit (huge_tree off)
    (EXTERNAL_ENTITY, zeep.exceptions.DTDForbidden),  # forbid_dtd
])
def test_zeeps_own_hardening_refuses_dtds_too(document: bytes, refusal: type[Exception]) -> None:
    """The client refuses a DOCTYPE before parsing; should that check ever go, zeep's settings still do."""
    with pytest.raises(refusal):
        zeep.loader.parse_xml(document % {b"op": b"getCourierOrderAvailabilityV1"}, None, settings=SETTINGS)
