"""Exactly once under faults: a send is one POST whatever happens; a lost answer is settled by reading the
session back (find_sent, by the invoice's hash), never by sending again blindly."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from ksef_testkit import Wired, outgoing

from connectors.http import RateLimited
from connectors.ksef.client import KsefUnavailable
from connectors.ksef.simulator import KsefSimulator
from hub.kernel.errors import RetryableError

Wire = Callable[..., Wired]


def test_a_5xx_on_send_is_one_attempt_and_retryable(sim: KsefSimulator, wired: Wire) -> None:
    port = wired().port
    session = port.open_session()
    sim.fail_next(r"/invoices$", 503, method="POST")
    with pytest.raises(KsefUnavailable, match="not retried: the request may have landed") as caught:
        port.send(session, outgoing("FV/1/12/2026"))
    assert isinstance(caught.value, RetryableError) and caught.value.status == 503
    assert len(sim.exchanges("POST", r"/invoices$")) == 1
    assert port.find_sent(session) == []  # KSeF never applied it: the hub sends it again


@pytest.mark.parametrize("drop", [False, True])
def test_a_lost_answer_is_found_by_its_hash(sim: KsefSimulator, wired: Wire, drop: bool) -> None:
    port = wired().port
    session = port.open_session()
    invoice = outgoing("FV/2/12/2026")
    sim.lose_next(r"/invoices$", method="POST", drop=drop)
    with pytest.raises(RetryableError):
        port.send(session, invoice)
    (exchange,) = sim.exchanges("POST", r"/invoices$")
    assert exchange.applied and exchange.fault == ("drop" if drop else "500 after")
    (found,) = port.find_sent(session)
    assert found.sha256 == invoice.sha256
    assert port.invoice_status(session, found.reference).status == "accepted"
    assert len(sim.sessions[session].invoices) == 1


def test_reads_are_retried(sim: KsefSimulator, wired: Wire) -> None:
    port = wired().port
    session = port.open_session()
    reference = port.send(session, outgoing("FV/3/12/2026"))
    sim.fail_next(r"/invoices/", 503, times=2, method="GET")
    assert port.invoice_status(session, reference).reference == reference
    assert [e.status for e in sim.exchanges("GET", r"/invoices/[^/]+$")][:3] == [503, 503, 200]
    sim.fail_next(r"/invoices/", 502, times=3, method="GET")
    with pytest.raises(KsefUnavailable, match="after 3 attempts"):
        port.invoice_status(session, reference)


def test_a_429_blocks_with_the_retry_after(sim: KsefSimulator, wired: Wire) -> None:
    port = wired().port
    session = port.open_session()
    sim.fail_next(r"/invoices$", 429, method="POST", retry_after=17)
    with pytest.raises(RateLimited) as caught:
        port.send(session, outgoing("FV/4/12/2026"))
    assert caught.value.retry_after == 17
    assert sim.sessions[session].invoices == []  # refused before KSeF took it (the bucket stays blocked 17 s)


def test_a_lost_answer_to_close_then_close_again(sim: KsefSimulator, wired: Wire) -> None:
    port = wired().port
    session = port.open_session()
    port.send(session, outgoing("FV/5/12/2026"))
    sim.lose_next(r"/close$")
    with pytest.raises(RetryableError):
        port.close_session(session)
    port.close_session(session)  # KSeF: 21180, the session is closed already
    assert [e.status for e in sim.exchanges("POST", r"/close$")] == [500, 400]
    assert port.session_status(session).code in (170, 200)


def test_a_lost_answer_to_open_leaves_an_unused_session(sim: KsefSimulator, wired: Wire) -> None:
    port = wired().port
    sim.lose_next(r"^/sessions/online$")
    with pytest.raises(RetryableError):
        port.open_session()
    session = port.open_session()
    assert len(sim.sessions) == 2 and port.has_session_key(session)


def test_a_5xx_before_authentication_completes(sim: KsefSimulator, wired: Wire) -> None:
    port = wired().port
    sim.fail_next(r"^/auth/token/redeem$", 500)
    with pytest.raises(KsefUnavailable):
        port.open_session()
    assert port.open_session()  # a new authentication, not a second redeem of the first
    assert len(sim.exchanges("POST", r"^/auth/ksef-token$")) == 2


def test_slow_answers(sim: KsefSimulator, wired: Wire) -> None:
    sim.slow_next(r"^/sessions/online$", 0.01)
    assert wired().port.open_session()
