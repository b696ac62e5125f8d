"""The connector as the registry sees it (kind, role, capability, options, factory), its options' checks, and
one port shared by worker threads."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from ksef_testkit import SELLER, Wired, outgoing
from pydantic import ValidationError

from connectors.ksef import SPEC, KsefOptions
from connectors.ksef.einvoicing import KsefEInvoicing
from connectors.ksef.options import ENVIRONMENTS
from connectors.ksef.simulator import DEFAULT_TOKEN, KsefSimulator
from hub.kernel.ports.capability import Capability
from hub.kernel.ports.invoicing import EInvoicing
from hub.platform.ratelimit import LocalRateLimiter, Throttle

Wire = Callable[..., Wired]


def test_the_spec() -> None:
    assert (SPEC.kind, SPEC.role, SPEC.options_model) == ("ksef", "einvoicing", KsefOptions)
    assert SPEC.capabilities == frozenset({Capability.EINVOICE_ONLINE, Capability.EINVOICE_BATCH})


def test_the_factory_builds_the_port(sim: KsefSimulator) -> None:
    throttle = Throttle(LocalRateLimiter(), "ksef:factory", per_minute=6000.0, burst=100.0)
    port = SPEC.factory("ksef", {"nip": SELLER, "token": DEFAULT_TOKEN, "api_url": "https://ksef.sim/v2"},
                        {"throttle": throttle, "transport": sim.transport()})
    assert isinstance(port, KsefEInvoicing) and isinstance(port, EInvoicing) and port.name == "ksef"
    assert port.open_session()
    port.close()


def test_options() -> None:
    options = KsefOptions.model_validate({"nip": SELLER, "token": DEFAULT_TOKEN})
    assert options.api_base == ENVIRONMENTS["production"] == "https://api.ksef.mf.gov.pl/v2"
    assert DEFAULT_TOKEN not in repr(options) and options.token.get() == DEFAULT_TOKEN
    test = KsefOptions.model_validate({"nip": SELLER, "token": "t", "environment": "test"})
    assert test.api_base == "https://api-test.ksef.mf.gov.pl/v2"
    local = KsefOptions.model_validate({"nip": SELLER, "token": "t", "api_url": "http://127.0.0.1:8123/"})
    assert local.api_base == "http://127.0.0.1:8123"
    for bad in ({"nip": "5260250275"}, {"nip": "526025027"}, {"api_url": "http://ksef.example.pl"},
                {"environment": "staging"}, {"list_page_size": 5}, {"surprise": 1}):
        with pytest.raises(ValidationError):
            KsefOptions.model_validate({"nip": SELLER, "token": "t", **bad})


def test_one_port_shared_by_threads(sim: KsefSimulator, wired: Wire) -> None:
    port = wired().port
    session = port.open_session()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for k in range(3):
                port.invoice_status(session, port.send(session, outgoing(f"FV/{n}-{k}/12/2026")))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    found = port.find_sent(session)
    assert len(found) == 12 and len({f.reference for f in found}) == 12
    assert sorted(f.invoice_number or "" for f in found) == sorted(f"FV/{n}-{k}/12/2026" for n in range(4)
                                                                   for k in range(3))
    assert len(sim.exchanges("POST", r"^/auth/ksef-token$")) == 1
