"""The carrier against the simulator: book -> label -> pickup -> cancel, the day's close, and exactly
once: a booking thrown away (the worker died before committing) is found again by our guid, never
added twice, also after an answer lost once EN had applied the call."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from poczta_polska_testkit import TODAY, URZAD, Wired, pickup, shipment

from connectors.carriers.poczta_polska import SPEC
from connectors.carriers.poczta_polska.mapping import guid_for
from connectors.carriers.poczta_polska.simulator import ENSimulator
from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.capability import Capability
from hub.kernel.ports.carrier import CancelRefused, Carrier
from hub.kernel.types import Address


def test_the_carrier_implements_the_port_and_announces_no_tracking(wired: Callable[..., Wired]) -> None:
    carrier = wired().carrier
    assert isinstance(carrier, Carrier)
    assert Capability.TRACKING not in SPEC.capabilities and SPEC.role == "carrier" and SPEC.kind == "poczta-polska"
    assert list(carrier.services()) == ["pocztex_kurier", "pocztex_na_dzis", "paczka_pocztowa",
                                        "przesylka_pobraniowa"]


def test_book_label_pickup_cancel(wired: Callable[..., Wired], sim: ENSimulator) -> None:
    w = wired()
    booking = w.carrier.book(shipment(weights=("1.5", "2"), cod="123.45", insurance="200"))
    guids = [guid_for("SH-2025-0001", 1), guid_for("SH-2025-0001", 2)]
    assert booking.external_id == guids[0] and booking.operator == "poczta-polska"
    assert [p.external_id for p in booking.parcels] == guids
    assert [p.tracking_number for p in booking.parcels] == ["00659007730000000001", "00659007730000000002"]
    (buffer,) = sim.buffers.values()
    assert buffer.opis == "hub" and buffer.urzad_nadania == URZAD and booking.handles["idBufor"] == str(buffer.id)
    stored = buffer.parcels[guids[0]]
    assert stored.find("pobranie").get("kwotaPobrania") == "12345" and stored.findtext("masa") == "1500"

    pdf = w.carrier.label(booking, "pdf", "A6")
    assert pdf.format == "pdf" and pdf.content.startswith(b"%PDF") and b"00659007730000000002" in pdf.content
    assert sim.calls("getAddresLabelByGuidCompact")  # two parcels: one PDF merged by EN
    zpl = w.carrier.label(booking, "zpl", "A6")
    assert zpl.format == "zpl" and zpl.content.count(b"^XA") == 2 and b"DPI_203" in zpl.content

    windows = w.carrier.pickup_windows(booking_address(), date(2025, 3, 4))
    assert [str(x.start) for x in windows] == ["09:00:00", "12:00:00"]
    booked = w.carrier.book_pickup(pickup())
    assert booked.external_id == "PU-2025-03-04" and booked.window == pickup().window
    (order,) = sim.courier_orders
    assert order["oczekiwanaDataOdbioru"] == "2025-03-04" and order["szacowanaIloscPrzeslek"] == "3"

    w.carrier.cancel(booking)
    assert sim.parcels() == {}
    w.carrier.cancel(booking)  # cancelled already: a retry succeeds
    assert len(sim.calls("clearEnvelopeByGuids")) == 1
    assert w.throttle.waits == len(sim.log)  # every call took a token first


def booking_address() -> Address:
    return Address(name="Sklep", street="Długa 5", city="Kraków", postal_code="30-001")


def test_single_parcel_label_by_guid(wired: Callable[..., Wired], sim: ENSimulator) -> None:
    w = wired()
    booking = w.carrier.book(shipment(service="paczka_pocztowa", weights=("0.7",)))
    label = w.carrier.label(booking, "pdf", "A6")
    assert label.content.startswith(b"%PDF") and booking.parcels[0].tracking_number.encode() in label.content
    lookup, call = sim.calls("getAddresLabelByGuid")  # the booking's look-up by guid, then the label
    assert booking.external_id.encode() in lookup.request
    assert booking.external_id.encode() in call.request and b"<idBufor>" in call.request


def test_crash_after_booking_books_again_and_finds_the_first(wired: Callable[..., Wired], sim: ENSimulator) -> None:
    """Book, throw the result away (the worker died before committing), book again with the same
    reference: EN holds ONE shipment and the same tracking numbers come back."""
    first = wired().carrier.book(shipment(weights=("1", "2")))
    again = wired().carrier.book(shipment(weights=("1", "2")))  # a fresh process: nothing remembered
    assert again == first
    assert len(sim.parcels()) == 1 and len(sim.calls("addShipment")) == 1
    assert len(sim.buffers) == 1  # the buffer was found by its description, not created twice


def test_a_first_call_books_without_the_lookup_and_a_retry_finds_it(wired: Callable[..., Wired],
                                                                    sim: ENSimulator) -> None:
    first = wired().carrier.book(shipment(first_call=True))
    assert sim.calls("getAddresLabelByGuid") == [] and sim.calls("getEnvelopeList") == []
    again = wired().carrier.book(shipment())  # its answer was lost: not a first call
    assert again == first and len(sim.calls("addShipment")) == 1 and len(sim.parcels()) == 1
    assert len(sim.calls("getAddresLabelByGuid")) == 1


def test_answer_lost_after_add_shipment_was_applied(wired: Callable[..., Wired], sim: ENSimulator) -> None:
    w = wired()
    sim.inject("addShipment", "lost")
    with pytest.raises(RetryableError) as caught:
        w.carrier.book(shipment())
    message = str(caught.value)
    assert "addShipment" in message and "not retried" in message and "\n" not in message
    assert len(sim.parcels()) == 1  # EN did add it
    booking = w.carrier.book(shipment())  # the job queue's next attempt
    assert booking.parcels[0].tracking_number == next(iter(sim.parcels().values()))
    assert len(sim.calls("addShipment")) == 1 and len(sim.parcels()) == 1


@pytest.mark.parametrize("fault", ["http_502_after_apply", "malformed", "slow"])
def test_a_write_is_sent_once_and_the_retry_finds_what_it_did(fault: str, wired: Callable[..., Wired],
                                                              sim: ENSimulator) -> None:
    w = wired(timeout=30)
    sim.inject("addShipment", fault, delay=45.0)  # "slow": longer than the read timeout
    with pytest.raises(RetryableError, match="addShipment"):
        w.carrier.book(shipment())
    assert len(sim.calls("addShipment")) == 1 and w.sleeps.calls == []  # no blind resend
    first_number = next(iter(sim.parcels().values()))
    assert w.carrier.book(shipment()).parcels[0].tracking_number == first_number
    assert len(sim.parcels()) == 1


def test_a_5xx_before_applying_then_a_clean_booking(wired: Callable[..., Wired], sim: ENSimulator) -> None:
    w = wired()
    sim.inject("addShipment", "http_500")
    with pytest.raises(RetryableError, match="HTTP 500"):
        w.carrier.book(shipment())
    assert sim.parcels() == {}
    assert w.carrier.book(shipment()).parcels[0].tracking_number
    assert len(sim.parcels()) == 1


def test_reads_are_retried_with_backoff(wired: Callable[..., Wired], sim: ENSimulator) -> None:
    w = wired()
    sim.inject("getEnvelopeBuforList", "http_500")
    sim.inject("getAddresLabelByGuid", "soap_server_fault")
    booking = w.carrier.book(shipment())
    assert booking.parcels[0].tracking_number
    assert w.sleeps.calls == [0.5, 0.5]
    sim.inject("getAddresLabelByGuid", "http_500", times=3)
    with pytest.raises(RetryableError, match="getAddresLabelByGuid: HTTP 500 \\(after 3 attempts\\)"):
        w.carrier.book(shipment("SH-OTHER"))


def test_a_slow_answer_within_the_timeout_is_waited_for(wired: Callable[..., Wired], sim: ENSimulator) -> None:
    w = wired(timeout=5)
    sim.inject("addShipment", "slow", delay=0.05)
    assert w.carrier.book(shipment()).parcels[0].tracking_number


def test_lost_answer_of_create_envelope_bufor_makes_no_second_buffer(wired: Callable[..., Wired],
                                                                     sim: ENSimulator) -> None:
    w = wired()
    sim.inject("createEnvelopeBufor", "lost")
    with pytest.raises(RetryableError, match="createEnvelopeBufor"):
        w.carrier.book(shipment())
    w.carrier.book(shipment())
    assert len(sim.buffers) == 1 and len(sim.calls("createEnvelopeBufor")) == 1


def test_a_configured_buffer_is_used_as_is(wired: Callable[..., Wired], sim: ENSimulator) -> None:
    fixed = sim.add_buffer("ręczny", urzad_nadania=URZAD)
    booking = wired(bufor_id=fixed).carrier.book(shipment())
    assert booking.handles["idBufor"] == str(fixed) and list(sim.buffers[fixed].parcels) == [booking.external_id]
    assert not sim.calls("getEnvelopeBuforList") and not sim.calls("createEnvelopeBufor")


def test_en_refusal_is_permanent_with_its_reason(wired: Callable[..., Wired], sim: ENSimulator) -> None:
    with pytest.raises(PermanentError) as caught:
        wired(bufor_id=9999).carrier.book(shipment())
    assert str(caught.value) == ("Poczta Polska (EN) addShipment: EN refused shipment SH-2025-0001: "
                                 "[101] Bufor o id 9999 nie istnieje")
    assert sim.parcels() == {}


def test_a_service_not_enabled_for_the_account_is_refused(wired: Callable[..., Wired], sim: ENSimulator) -> None:
    with pytest.raises(PermanentError, match="not enabled"):
        wired(services=["paczka_pocztowa"]).carrier.book(shipment())
    assert sim.log == []


def test_label_not_ready_is_retryable(wired: Callable[..., Wired], sim: ENSimulator) -> None:
    w = wired()
    booking = w.carrier.book(shipment())
    sim.inject("getAddresLabelByGuid", "label_not_ready")
    sim.inject("getPrintForParcel", "label_not_ready")
    with pytest.raises(RetryableError, match="no label yet"):
        w.carrier.label(booking, "pdf", "A6")
    with pytest.raises(RetryableError, match="no label yet"):
        w.carrier.label(booking, "zpl", "A6")
    assert w.carrier.label(booking, "pdf", "A6").content.startswith(b"%PDF")


def test_day_close_then_cancel_is_refused_and_a_retry_of_book_finds_the_envelope(
        wired: Callable[..., Wired], sim: ENSimulator) -> None:
    w = wired()
    booking = w.carrier.book(shipment())
    sent = w.carrier.send_envelope()
    assert sent.status == "WYSLANY" and sent.id_bufor == int(booking.handles["idBufor"])
    assert sim.envelopes[sent.id_envelope].parcels.keys() == {booking.external_id}
    with pytest.raises(CancelRefused) as caught:
        w.carrier.cancel(booking)
    assert f"envelope {sent.id_envelope}" in str(caught.value) and "sendEnvelope" in str(caught.value)
    assert sim.envelopes[sent.id_envelope].parcels  # still there

    again = wired().carrier.book(shipment())  # a retry of book after the close
    assert [p.tracking_number for p in again.parcels] == [p.tracking_number for p in booking.parcels]
    assert again.handles == {"idEnvelope": str(sent.id_envelope), "guids": booking.external_id}
    assert len(sim.calls("addShipment")) == 1
    assert wired().carrier.label(again, "pdf", "A6").content.startswith(b"%PDF")  # printable after the close


def test_send_envelope_lost_answer_returns_todays_envelope(wired: Callable[..., Wired], sim: ENSimulator) -> None:
    w = wired()
    w.carrier.book(shipment())
    sim.inject("sendEnvelope", "lost")
    with pytest.raises(RetryableError, match="sendEnvelope"):
        w.carrier.send_envelope()
    (envelope,) = sim.envelopes.values()
    assert w.carrier.send_envelope().id_envelope == envelope.id
    assert len(sim.calls("sendEnvelope")) == 1


def test_send_envelope_needs_a_posting_office_and_something_to_send(wired: Callable[..., Wired]) -> None:
    with pytest.raises(PermanentError, match="urzad_nadania"):
        wired(urzad_nadania=None).carrier.send_envelope()
    with pytest.raises(PermanentError, match="nothing to send"):
        wired().carrier.send_envelope()


def test_cancel_of_a_parcel_never_added_succeeds(wired: Callable[..., Wired], sim: ENSimulator) -> None:
    w = wired()
    w.carrier.book(shipment())
    other = w.carrier.book(shipment("SH-2"))
    w.carrier.cancel(other)
    w.carrier.cancel(other)
    assert list(sim.parcels()) == [guid_for("SH-2025-0001")]


def test_cancel_with_a_lost_answer_then_again(wired: Callable[..., Wired], sim: ENSimulator) -> None:
    w = wired()
    booking = w.carrier.book(shipment())
    sim.inject("clearEnvelopeByGuids", "lost")
    with pytest.raises(RetryableError, match="clearEnvelopeByGuids"):
        w.carrier.cancel(booking)
    w.carrier.cancel(booking)
    assert sim.parcels() == {} and len(sim.calls("clearEnvelopeByGuids")) == 1


def test_pickup_is_booked_once_per_reference_in_a_process(wired: Callable[..., Wired], sim: ENSimulator) -> None:
    w = wired()
    first = w.carrier.book_pickup(pickup())
    assert w.carrier.book_pickup(pickup()) == first
    assert len(sim.courier_orders) == 1


def test_pickup_answer_lost_is_not_resent(wired: Callable[..., Wired], sim: ENSimulator) -> None:
    sim.inject("zamowKuriera", "lost")
    with pytest.raises(PermanentError) as caught:
        wired().carrier.book_pickup(pickup())
    message = str(caught.value)
    assert "zamowKuriera" in message and "does not order again" in message and "sklep@ania.pl" in message
    assert len(sim.courier_orders) == 1 and len(sim.calls("zamowKuriera")) == 1


def test_pickup_refused_by_en_and_cancel_refused(wired: Callable[..., Wired], sim: ENSimulator) -> None:
    w = wired()
    with pytest.raises(PermanentError, match=r"\[113\] Data odbioru 2025-03-01 jest w przeszłości"):
        w.carrier.book_pickup(pickup("PU-OLD", date(2025, 3, 1)))
    booked = w.carrier.book_pickup(pickup())
    with pytest.raises(CancelRefused, match="no call to cancel a courier order"):
        w.carrier.cancel_pickup(booked)


def test_pickup_windows_come_from_the_options(wired: Callable[..., Wired]) -> None:
    carrier = wired(pickup_windows=["10:00-13:00"], pickup_weekdays=[1, 2, 3, 4, 5, 6]).carrier
    assert [(str(w.start), str(w.end)) for w in carrier.pickup_windows(booking_address(), date(2025, 3, 8))] == [
        ("10:00:00", "13:00:00")]
    assert carrier.pickup_windows(booking_address(), date(2025, 3, 9)) == []  # Sunday
    assert carrier.pickup_windows(booking_address(), TODAY.replace(day=2)) == []  # yesterday


def test_track_refuses_with_the_reason(wired: Callable[..., Wired]) -> None:
    with pytest.raises(PermanentError, match="Sledzenie service, whose WSDL is not vendored"):
        wired().carrier.track(["00659007730000000001"])


def test_an_answer_missing_the_number_is_retryable_and_the_retry_finds_it(wired: Callable[..., Wired],
                                                                          sim: ENSimulator) -> None:
    w = wired()
    sim.inject("addShipment", "no_number")
    with pytest.raises(RetryableError) as caught:
        w.carrier.book(shipment())
    assert str(caught.value) == (f"Poczta Polska (EN) addShipment: no numerNadania for guid {guid_for('SH-2025-0001')}"
                                 " in the answer; the next attempt looks the parcel up in the buffer")
    booking = w.carrier.book(shipment())
    assert booking.parcels[0].tracking_number == sim.parcels()[booking.external_id]
    assert len(sim.calls("addShipment")) == 1


def test_a_retry_asking_for_more_parcels_than_en_holds_is_refused(wired: Callable[..., Wired],
                                                                  sim: ENSimulator) -> None:
    w = wired()
    w.carrier.book(shipment())
    with pytest.raises(PermanentError, match="without its parcel 2"):
        w.carrier.book(shipment(weights=("1.5", "2")))
    assert len(sim.calls("addShipment")) == 1
