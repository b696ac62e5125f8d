"""The connector against the simulator: book -> label -> protocol -> pickup -> cancel, exactly once across
crashes and lost answers, and every injected fault ending as a one-line RetryableError or PermanentError."""

from __future__ import annotations

import io
import time as clock
from datetime import date, time
from decimal import Decimal

import pypdf
import pytest
from dpd_testkit import SENDER, Sleeps, shipment, wire
from lxml import etree

from connectors.carriers.dpd.carrier import DpdCarrier
from connectors.carriers.dpd.simulator import DpdSimulator
from hub.kernel.errors import LoginNeeded, PermanentError, RetryableError
from hub.kernel.ports.carrier import (
    BookedPickup,
    Booking,
    CancelRefused,
    Carrier,
    Parcel,
    PickupRequest,
    PickupWindow,
)
from hub.kernel.types import Address
from hub.platform.memory import Memory

DAY = date(2030, 1, 7)
WINDOW = PickupWindow(DAY, time(14), time(16))


def pickup_request(booking: Booking, reference: str = "PU-1", window: PickupWindow = WINDOW) -> PickupRequest:
    return PickupRequest(reference=reference, address=SENDER, window=window, bookings=[booking], parcels=2,
                         weight_kg=Decimal("1.8"))


def sent_xml(sim: DpdSimulator, operation: str, index: int = -1) -> etree._Element:
    return etree.fromstring(sim.calls(operation)[index].request)


def pdf_text(content: bytes) -> tuple[int, str]:
    reader = pypdf.PdfReader(io.BytesIO(content))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def test_book_label_protocol_pickup_and_cancel(sim: DpdSimulator, memory: Memory) -> None:
    carrier = wire(sim, memory=memory)
    assert isinstance(carrier, Carrier)
    booking = carrier.book(shipment(cod=Decimal("123.4"), insurance=Decimal("1500")))
    package = sim.package_by_reference("ORD-1001")
    assert package is not None and len(sim.packages) == 1
    assert booking.operator == "dpd" and booking.external_id == str(package.package_id)
    assert [p.tracking_number for p in booking.parcels] == [p.waybill for p in package.parcels]
    assert [p.reference for p in package.parcels] == ["ORD-1001-1", "ORD-1001-2"]
    assert package.services["cod"] == {"amount": "123.40", "currency": "PLN"}
    assert package.receiver["postalCode"] == "26605" and package.sender_fid == 1495

    label = carrier.label(booking, "pdf", "A6")
    pages, text = pdf_text(label.content)
    assert label.format == "pdf" and pages == 2
    assert all(p.tracking_number in text for p in booking.parcels)
    assert sent_xml(sim, "generateSpedLabelsV4").findtext(".//outputDocPageFormatV1") == "LBL_PRINTER"
    carrier.label(booking, "pdf", "A4")
    assert sent_xml(sim, "generateSpedLabelsV4").findtext(".//outputDocPageFormatV1") == "A4"
    zpl = carrier.label(booking, "zpl", "A6")
    assert zpl.format == "zpl" and zpl.content.count(b"^XA") == 2 and booking.parcels[1].tracking_number.encode() \
        in zpl.content
    with pytest.raises(PermanentError, match="ZPL only for label printers"):
        carrier.label(booking, "zpl", "A4")

    protocol = carrier.protocol([booking])
    assert pdf_text(protocol)[1].count("0000001") == 2  # both waybills on the handover protocol
    assert sent_xml(sim, "generateProtocolV2").findtext(".//pickupAddress/fid") == "1495"

    windows = carrier.pickup_windows(SENDER, DAY)
    assert [(w.start, w.end) for w in windows] == [(time(14), time(16)), (time(15), time(17)), (time(17), time(19))]
    assert sent_xml(sim, "getCourierOrderAvailabilityV1").findtext(".//zipCode") == "02274"
    pickup = carrier.book_pickup(pickup_request(booking, window=windows[0]))
    order = sim.orders[pickup.external_id]
    assert pickup.handles["check_sum"] == str(order.check_sum) and order.params["from"] == "14:00"

    with pytest.raises(PermanentError, match=r"^DPD tracking needs DPD InfoServices, whose WSDL is not vendored$"):
        carrier.track([booking.parcels[0].tracking_number])
    with pytest.raises(CancelRefused, match="DPD cannot cancel a parcel by API") as refused:
        carrier.cancel(booking)
    assert "unconfirmed" in str(refused.value) and "\n" not in str(refused.value)

    carrier.cancel_pickup(pickup)
    carrier.cancel_pickup(pickup)  # a retry: succeeds without asking DPD again
    assert order.state == "cancelled"
    assert len(sim.calls("packagesPickupCallV4")) == 2  # INSERT + one CANCEL


def test_crash_between_dpd_answer_and_commit_books_once(sim: DpdSimulator) -> None:
    request = shipment("ORD-2002")
    first = wire(sim).book(request)  # thrown away: the worker died before committing it
    again = wire(sim).book(request)  # a new process, the same reference
    assert len(sim.packages) == 1
    assert again == first
    assert [p.tracking_number for p in again.parcels] == [p.tracking_number for p in first.parcels]
    duplicate = etree.fromstring(sim.calls("generatePackagesNumbersV4")[1].response)
    assert duplicate.findtext(".//Status") == "DUPLICATED_PACKAGE_REFERENCE"
    lookup = sent_xml(sim, "generateSpedLabelsV4")
    assert lookup.findtext(".//session/packages/reference") == "ORD-2002"


@pytest.mark.parametrize("fault", ["lost", "502-after-apply", "malformed", "slow"])
def test_an_answer_lost_after_dpd_applied_it_is_found_by_reference(sim: DpdSimulator, fault: str) -> None:
    sim.slow_seconds = 5.0
    carrier = wire(sim, request_timeout=1.0)
    sim.inject("generatePackagesNumbersV4", fault)
    with pytest.raises(RetryableError) as lost:
        carrier.book(shipment("ORD-3003"))
    assert "may have created the package: the next attempt finds it by its reference ORD-3003" in str(lost.value)
    assert "\n" not in str(lost.value)
    assert len(sim.packages) == 1  # DPD did create it
    booking = carrier.book(shipment("ORD-3003"))
    assert len(sim.packages) == 1
    assert [p.tracking_number for p in booking.parcels] == [
        p.waybill for p in sim.package_by_reference("ORD-3003").parcels]  # type: ignore[union-attr]


@pytest.mark.parametrize(("fault", "text"), [("timeout", "nothing reached DPD"), ("503", "HTTP 503"),
                                             ("transient-fault", "Try again later")])
def test_nothing_booked_then_the_retry_books(sim: DpdSimulator, fault: str, text: str) -> None:
    carrier = wire(sim)
    sim.inject("generatePackagesNumbersV4", fault)
    with pytest.raises(RetryableError, match=text):
        carrier.book(shipment("ORD-4004"))
    assert sim.packages == {}
    assert carrier.book(shipment("ORD-4004")).external_id in {str(i) for i in sim.packages}
    assert len(sim.packages) == 1


def test_reads_are_retried_with_backoff_and_give_up_as_retryable(sim: DpdSimulator) -> None:
    sleeps = Sleeps()
    carrier = wire(sim, sleeps=sleeps)
    booking = carrier.book(shipment())
    sim.inject("generateSpedLabelsV4", "503", "502-after-apply")
    assert carrier.label(booking, "pdf", "A6").content.startswith(b"%PDF-")
    assert sleeps.calls == [0.5, 1.0]
    sim.inject("generateSpedLabelsV4", "503", "503", "503")
    with pytest.raises(RetryableError, match=r"HTTP 503 without a SOAP answer .*\(after 3 attempts\)"):
        carrier.label(booking, "pdf", "A6")


def test_a_label_not_ready_yet_is_retryable(sim: DpdSimulator) -> None:
    carrier = wire(sim, attempts=1)
    booking = carrier.book(shipment())
    sim.inject("generateSpedLabelsV4", "label-not-ready")
    with pytest.raises(RetryableError, match="DPD answered NOT_FOUND"):
        carrier.label(booking, "pdf", "A6")
    assert carrier.label(booking, "pdf", "A6").content.startswith(b"%PDF-")


@pytest.mark.parametrize("fault", ["entity-bomb", "external-entity"])
@pytest.mark.parametrize("operation", ["generatePackagesNumbersV4", "getCourierOrderAvailabilityV1"])
def test_xml_bombs_and_external_entities_are_refused(sim: DpdSimulator, fault: str, operation: str) -> None:
    carrier = wire(sim)
    sim.inject(operation, fault)
    started = clock.monotonic()
    with pytest.raises(PermanentError) as refused:
        if operation == "generatePackagesNumbersV4":
            carrier.book(shipment())
        else:
            carrier.pickup_windows(SENDER, DAY)
    message = str(refused.value)
    assert message.startswith(f"DPD {operation}: answer refused by the XML hardening")
    assert "\n" not in message and "root:" not in message and "lol" not in message
    assert refused.value.__suppress_context__  # no chained traceback of zeep's internals
    assert clock.monotonic() - started < 2.0  # nothing was expanded
    assert len(sim.calls(operation)) == 1  # refused, not retried


def test_wrong_credentials_hold_the_job_for_an_operator(sim: DpdSimulator) -> None:
    carrier = wire(sim, password="not-the-password")
    with pytest.raises(LoginNeeded, match="DPD refused the login \\(Login failed\\)"):
        carrier.book(shipment())
    assert sim.packages == {}


def test_dpd_validation_refusals_name_the_field(sim: DpdSimulator) -> None:
    carrier = wire(sim)
    bad_postal = Address(name="Anna Nowak", street="ul. Polna 200", city="Radom", postal_code="2660")
    with pytest.raises(PermanentError, match=r"INCORRECT_DATA: INCORRECT_RECEIVER_POSTAL_CODE \(ReceiverPostalCode\)"):
        carrier.book(shipment(receiver=bad_postal))
    with pytest.raises(PermanentError, match="ERROR_PARCEL_WEIGHT_INCORRECT"):
        carrier.book(shipment("ORD-5", parcels=[Parcel(weight_kg=Decimal("60"))]))
    assert sim.packages == {}
    with pytest.raises(PermanentError, match="not enabled for this connector"):
        wire(sim, services=["classic"]).book(shipment(service="guarantee-1200"))


def test_protocol_pickup_address_must_match_the_sender(sim: DpdSimulator) -> None:
    booking = wire(sim).book(shipment())
    with pytest.raises(PermanentError, match="INCORRECT_PICKUP_ADDRESS_FID"):
        wire(sim, sender_fid=2001).protocol([booking])
    foreign = Booking("X", "1", [], "inpost", {})
    with pytest.raises(PermanentError, match="made with inpost, not DPD"):
        wire(sim).label(foreign, "pdf", "A6")


def test_pickup_crash_between_answer_and_commit_orders_one_courier(sim: DpdSimulator, memory: Memory) -> None:
    booking = wire(sim).book(shipment())
    first = wire(sim, memory=memory).book_pickup(pickup_request(booking))  # thrown away
    again = wire(sim, memory=memory).book_pickup(pickup_request(booking))  # a new process
    assert again == first
    assert len(sim.orders) == 1 and len(sim.calls("packagesPickupCallV4")) == 1


def test_a_lost_pickup_answer_is_never_ordered_again_blindly(sim: DpdSimulator, memory: Memory) -> None:
    booking = wire(sim).book(shipment())
    carrier = wire(sim, memory=memory)
    sim.inject("packagesPickupCallV4", "lost")
    with pytest.raises(PermanentError, match=r"may have ordered the courier .* check DPD's panel"):
        carrier.book_pickup(pickup_request(booking))
    assert len(sim.orders) == 1  # DPD took it
    with pytest.raises(PermanentError, match=r"an earlier attempt .* answer was lost"):
        wire(sim, memory=memory).book_pickup(pickup_request(booking))
    assert len(sim.orders) == 1 and len(sim.calls("packagesPickupCallV4")) == 1
    other = wire(sim, memory=memory).book_pickup(pickup_request(booking, "PU-1-b"))  # the operator's new reference
    assert len(sim.orders) == 2 and other.external_id in sim.orders


def test_a_pickup_that_never_reached_dpd_or_was_refused_can_be_booked(sim: DpdSimulator, memory: Memory) -> None:
    booking = wire(sim).book(shipment())
    carrier = wire(sim, memory=memory)
    sim.inject("packagesPickupCallV4", "timeout")
    with pytest.raises(RetryableError, match="nothing reached DPD, the next attempt orders the courier"):
        carrier.book_pickup(pickup_request(booking))
    backwards = PickupWindow(DAY, time(16), time(14))
    with pytest.raises(PermanentError, match="INCORRECT_DATA: INCORRECT_TIME_RANGE"):
        carrier.book_pickup(pickup_request(booking, window=backwards))
    assert sim.orders == {}
    pickup = carrier.book_pickup(pickup_request(booking))
    assert list(sim.orders) == [pickup.external_id]


def test_cancel_pickup_refused_once_the_courier_is_on_the_way(sim: DpdSimulator) -> None:
    booking = wire(sim).book(shipment())
    carrier = wire(sim)  # no memory: the journal lives in the process
    pickup = carrier.book_pickup(pickup_request(booking))
    assert carrier.book_pickup(pickup_request(booking)) == pickup  # same process: found in the journal
    sim.close_order(pickup.external_id)
    with pytest.raises(CancelRefused, match="NOT_PROCESSED: ORDER_CLOSED"):
        carrier.cancel_pickup(pickup)
    sim.orders[pickup.external_id].state = "active"
    carrier.cancel_pickup(pickup)
    wire(sim).cancel_pickup(pickup)  # another process retrying: DPD answers NOT_FOUND, taken as done
    assert sim.orders[pickup.external_id].state == "cancelled"
    bad = BookedPickup(pickup.reference, pickup.external_id, pickup.window, {})
    with pytest.raises(PermanentError, match="no valid check_sum"):
        wire(sim).cancel_pickup(bad)


def test_a_slow_answer_over_real_http_times_out(sim: DpdSimulator) -> None:
    """Served on loopback: the zeep transport's read timeout is real, not simulated."""
    address = sim.serve()
    try:
        sim.slow_seconds = 1.5
        carrier: DpdCarrier = wire(sim, service_url=address, transport=None, request_timeout=0.4, attempts=1)
        assert len(carrier.pickup_windows(SENDER, DAY)) == 3
        sim.inject("getCourierOrderAvailabilityV1", "slow")
        started = clock.monotonic()
        with pytest.raises(RetryableError, match="DPD did not answer in time \\(ReadTimeout\\)"):
            carrier.pickup_windows(SENDER, DAY)
        assert clock.monotonic() - started < 1.4
        wrong = wire(sim, service_url=address.rsplit("/", 1)[0] + "/Nope", transport=None)
        with pytest.raises(PermanentError, match="HTTP 404 without a SOAP answer"):
            wrong.pickup_windows(SENDER, DAY)
    finally:
        sim.stop()


def test_a_parcel_reference_taken_by_another_package_is_a_clear_refusal(sim: DpdSimulator) -> None:
    carrier = wire(sim)
    carrier.book(shipment("ORD-6", parcels=[Parcel(weight_kg=Decimal(1), reference="SHARED-1")]))
    with pytest.raises(PermanentError, match="a parcel reference of ORD-7 belongs to another DPD package"):
        carrier.book(shipment("ORD-7", parcels=[Parcel(weight_kg=Decimal(1), reference="SHARED-1")]))
    assert len(sim.packages) == 1
