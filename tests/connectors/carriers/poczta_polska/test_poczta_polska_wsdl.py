"""The vendored WSDL: byte-identical to the shared vendor copy, loaded offline by zeep with XML hardening."""

from __future__ import annotations

import hashlib

import pytest
from poczta_polska_testkit import SHARED_WSDL, VENDORED_WSDL

from connectors.carriers.poczta_polska.client import BINDING, WSDL_PATH, hardened_settings, wsdl_document


def test_vendored_wsdl_is_byte_identical_to_the_shared_copy() -> None:
    if not SHARED_WSDL.parent.parent.parent.parent.exists():
        pytest.skip("/work/shared is absent: nothing to compare the vendored WSDL with")
    assert WSDL_PATH == VENDORED_WSDL
    vendored, shared = VENDORED_WSDL.read_bytes(), SHARED_WSDL.read_bytes()
    assert hashlib.sha256(vendored).hexdigest() == hashlib.sha256(shared).hexdigest()
    assert vendored == shared


def test_zeep_loads_the_binding_offline_with_82_operations() -> None:
    document = wsdl_document()
    binding = document.bindings[BINDING]
    assert len(binding._operations) == 82
    for name in ("addShipment", "getEnvelopeBufor", "getEnvelopeBuforList", "createEnvelopeBufor",
                 "clearEnvelopeByGuids", "getAddresLabelByGuid", "getAddresLabelByGuidCompact", "getPrintForParcel",
                 "sendEnvelope", "getEnvelopeList", "getEnvelopeContentShort", "zamowKuriera"):
        assert binding.get(name) is not None


def test_xml_hardening_is_on() -> None:
    settings = hardened_settings()
    assert (settings.forbid_dtd, settings.forbid_entities, settings.forbid_external) == (True, True, True)
    assert settings.strict and not settings.xml_huge_tree
