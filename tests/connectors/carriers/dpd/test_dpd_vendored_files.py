"""The WSDL and XSD in the package are DPD's files as vendored in shared/specs, byte for byte, and zeep
loads them offline with the XML hardening on."""

from __future__ import annotations

from pathlib import Path

import pytest
import zeep

from connectors.carriers.dpd.client import BINDING, SETTINGS, WSDL

SHARED = Path("/work/shared/specs/carriers/dpd_pl")
NAMES = ("DPDPackageXmlServices.wsdl", "DPDPackageXmlServices.xsd")


@pytest.mark.skipif(not SHARED.is_dir(), reason="/work/shared (the vendored specs) is not on this machine")
@pytest.mark.parametrize("name", NAMES)
def test_the_package_carries_the_vendored_file_unchanged(name: str) -> None:
    ours = WSDL.parent / name
    assert ours.read_bytes() == (SHARED / name).read_bytes(), f"{ours} differs from {SHARED / name}"


def test_the_wsdl_imports_the_xsd_by_its_relative_name() -> None:
    assert b'schemaLocation="DPDPackageXmlServices.xsd"' in WSDL.read_bytes()
    assert (WSDL.parent / "DPDPackageXmlServices.xsd").is_file()


def test_zeep_loads_the_20_operations_offline_with_the_hardening_on() -> None:
    assert SETTINGS.forbid_dtd and SETTINGS.forbid_entities and SETTINGS.forbid_external
    assert not SETTINGS.xml_huge_tree
    client = zeep.Client(str(WSDL), settings=SETTINGS)
    operations = set(client.wsdl.bindings[BINDING]._operations)
    assert len(operations) == 20
    assert {"generatePackagesNumbersV4", "generateSpedLabelsV4", "generateProtocolV2",
            "getCourierOrderAvailabilityV1", "packagesPickupCallV4"} <= operations
    # none of them is a search by reference (the exactly-once design rests on this, see carrier.py)
    assert not [op for op in operations if op.lower().startswith(("find", "get", "search"))
                and op not in ("findPostalCodeV1", "getCourierOrderAvailabilityV1")]
