"""Golden requests and the pure mapping: the exact SOAP XML we send for a ShipmentRequest, EN's units
(grams, grosze), our guid, addresses, and what the mapping refuses before any call."""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal

import pytest
from lxml import etree
from poczta_polska_testkit import LOGIN, PASSWORD, TODAY, body_of, pickup, shipment, vendor_schema, wire

from connectors.carriers.poczta_polska import mapping
from connectors.carriers.poczta_polska.carrier import PocztaPolskaCarrier
from connectors.carriers.poczta_polska.simulator import ENSimulator
from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.types import Address


@pytest.fixture(scope="module")
def carrier() -> PocztaPolskaCarrier:
    return wire(ENSimulator(LOGIN, PASSWORD, today=TODAY)).carrier


def _add_shipment_xml(carrier: PocztaPolskaCarrier, request: object, bufor: int = 101) -> bytes:
    type_name, fields = mapping.przesylka(request)  # type: ignore[arg-type]
    client = carrier.client
    envelope = client.client.create_message(client.service, "addShipment", przesylki=[client.new(type_name, fields)],
                                            idBufor=bufor)
    return etree.tostring(envelope, pretty_print=True)


POCZTEX_GOLDEN = """\
<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/">
  <soap-env:Body>
    <ns0:addShipment xmlns:ns0="http://e-nadawca.poczta-polska.pl">
      <przesylki xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" guid="EF52019E274C91CA3A2CF0998E880994" \
opis="SH-2025-0001" xsi:type="ns0:pocztex2021KurierType">
        <adres nazwa="Jan Kowalski" ulica="ul. Marsza&#322;kowska" numerDomu="10" numerLokalu="3" \
miejscowosc="Warszawa" kodPocztowy="00001" kraj="Polska" telefon="600200300" email="jan.kowalski@example.pl" \
mobile="600200300"/>
        <nadawca nazwa="Ania sp. z o.o." nazwa2="Sklep Ania" ulica="D&#322;uga" numerDomu="5" \
miejscowosc="Krak&#243;w" kodPocztowy="30001" kraj="Polska" telefon="123456789" email="sklep@ania.pl"/>
        <pobranie sposobPobrania="RACHUNEK_BANKOWY" kwotaPobrania="12345" nrb="61109010140000071219812874" \
tytulem="SH-2025-0001"/>
        <masa>1500</masa>
        <wartosc>20000</wartosc>
        <format>M</format>
        <zawartosc>
          <zawartoscInna>order 7731</zawartoscInna>
        </zawartosc>
        <subPrzesylka guid="B18C72E215069405D9E8EAB60246695A">
          <masa>2250</masa>
          <format>M</format>
        </subPrzesylka>
        <punktOdbioru id="952581"/>
      </przesylki>
      <idBufor>101</idBufor>
    </ns0:addShipment>
  </soap-env:Body>
</soap-env:Envelope>
"""

PACZKA_GOLDEN = """\
<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/">
  <soap-env:Body>
    <ns0:addShipment xmlns:ns0="http://e-nadawca.poczta-polska.pl">
      <przesylki xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" guid="164567F6FA221FAF0EFDC9CEF34FEB6E" \
opis="SH-2" posteRestante="false" iloscPotwierdzenOdbioru="0" kategoria="PRIORYTETOWA" gabaryt="GABARYT_A" \
masa="750" wartosc="5050" egzemplarzBiblioteczny="false" dlaOciemnialych="false" xsi:type="ns0:paczkaPocztowaType">
        <adres nazwa="Jan Kowalski" ulica="ul. Marsza&#322;kowska" numerDomu="10" numerLokalu="3" \
miejscowosc="Warszawa" kodPocztowy="00001" kraj="Polska" telefon="600200300" email="jan.kowalski@example.pl" \
mobile="600200300"/>
        <nadawca nazwa="Ania sp. z o.o." nazwa2="Sklep Ania" ulica="D&#322;uga" numerDomu="5" \
miejscowosc="Krak&#243;w" kodPocztowy="30001" kraj="Polska" telefon="123456789" email="sklep@ania.pl"/>
      </przesylki>
      <idBufor>101</idBufor>
    </ns0:addShipment>
  </soap-env:Body>
</soap-env:Envelope>
"""

ZAMOW_KURIERA_GOLDEN = """\
<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/">
  <soap-env:Body>
    <ns0:zamowKuriera xmlns:ns0="http://e-nadawca.poczta-polska.pl">
      <miejsceOdbioru nazwa="Ania sp. z o.o." nazwa2="Sklep Ania" ulica="D&#322;uga" numerDomu="5" \
miejscowosc="Krak&#243;w" kodPocztowy="30001" kraj="Polska" telefon="123456789" email="sklep@ania.pl"/>
      <nadawca nazwa="Ania sp. z o.o." nazwa2="Sklep Ania" ulica="D&#322;uga" numerDomu="5" \
miejscowosc="Krak&#243;w" kodPocztowy="30001" kraj="Polska" telefon="123456789" email="sklep@ania.pl"/>
      <oczekiwanaDataOdbioru>2025-03-04</oczekiwanaDataOdbioru>
      <oczekiwanaGodzinaOdbioru>09:00</oczekiwanaGodzinaOdbioru>
      <szacowanaIloscPrzeslek>3</szacowanaIloscPrzeslek>
      <szacowanaLacznaMasaPrzesylek>7.25</szacowanaLacznaMasaPrzesylek>
      <potwierdzenieZamowieniaEmail>sklep@ania.pl</potwierdzenieZamowieniaEmail>
    </ns0:zamowKuriera>
  </soap-env:Body>
</soap-env:Envelope>
"""


def test_golden_pocztex_with_two_parcels_cod_value_and_pickup_point(carrier: PocztaPolskaCarrier) -> None:
    request = shipment(weights=("1.5", "2.25"), cod="123.45", insurance="200", pickup_point="952581",
                       options={"format": "M"})
    sent = _add_shipment_xml(carrier, request)
    assert sent.decode() == POCZTEX_GOLDEN
    assert vendor_schema().validate(body_of(sent)), vendor_schema().error_log


def test_golden_paczka_pocztowa(carrier: PocztaPolskaCarrier) -> None:
    request = shipment("SH-2", "paczka_pocztowa", weights=("0.75",), insurance="50.5",
                       options={"kategoria": "PRIORYTETOWA"}, content=None)
    sent = _add_shipment_xml(carrier, request)
    assert sent.decode() == PACZKA_GOLDEN
    assert vendor_schema().validate(body_of(sent)), vendor_schema().error_log


def test_golden_zamow_kuriera(carrier: PocztaPolskaCarrier) -> None:
    client = carrier.client
    sent = etree.tostring(client.client.create_message(client.service, "zamowKuriera",
                                                       **mapping.zamow_kuriera(pickup(), None)), pretty_print=True)
    assert sent.decode() == ZAMOW_KURIERA_GOLDEN
    assert vendor_schema().validate(body_of(sent)), vendor_schema().error_log


def test_przesylka_pobraniowa_carries_cod_and_the_required_wartosc(carrier: PocztaPolskaCarrier) -> None:
    type_name, fields = mapping.przesylka(shipment("SH-3", "przesylka_pobraniowa", weights=("3",), cod="99.99"))
    assert type_name == "przesylkaPobraniowaType"
    assert fields["pobranie"]["kwotaPobrania"] == 9999 and fields["wartosc"] == 0 and fields["masa"] == 3000
    assert vendor_schema().validate(body_of(_add_shipment_xml(carrier, shipment("SH-3", "przesylka_pobraniowa",
                                                                                 weights=("3",), cod="99.99"))))


def test_our_guid_is_32_hex_characters_from_the_reference() -> None:
    first = mapping.guid_for("SH-1")
    assert first == mapping.guid_for("SH-1") and len(first) == 32 and int(first, 16) >= 0 and first.upper() == first
    assert len({first, mapping.guid_for("SH-2"), mapping.guid_for("SH-1", 2), mapping.guid_for("SH-1", 3)}) == 4
    assert mapping.guids_for("SH-1", 2) == [first, mapping.guid_for("SH-1", 2)]


@pytest.mark.parametrize(("kg", "grams"), [("1.5", 1500), ("0.0001", 1), ("0.0015", 2), ("2.2501", 2251)])
def test_masa_is_whole_grams_rounded_up(kg: str, grams: int) -> None:
    assert mapping.grams(Decimal(kg)) == grams


@pytest.mark.parametrize("kg", ["0", "-1", "10000"])
def test_a_weight_outside_masa_type_is_refused(kg: str) -> None:
    with pytest.raises(PermanentError, match="masa"):
        mapping.grams(Decimal(kg))


@pytest.mark.parametrize(("amount", "grosze"), [("123.45", 12345), ("0.005", 1), ("0.004", 0), ("10", 1000)])
def test_amounts_are_grosze(amount: str, grosze: int) -> None:
    assert mapping.grosze(Decimal(amount), field="x") == grosze


def test_an_amount_over_the_schema_limit_is_refused() -> None:
    with pytest.raises(PermanentError, match="outside"):
        mapping.grosze(Decimal("100000"), field="cod amount")


@pytest.mark.parametrize(("street", "parts"), [
    ("Długa 5", ("Długa", "5", None)),
    ("Długa 5/3", ("Długa", "5", "3")),
    ("Długa 5 / 3", ("Długa", "5", "3")),
    ("ul. 3 Maja 12a m. 4", ("ul. 3 Maja", "12a", "4")),
    ("Plac Wolności 1 lok. 2B", ("Plac Wolności", "1", "2B")),
    ("Rynek", ("Rynek", None, None)),
])
def test_street_splits_into_ulica_numer_domu_numer_lokalu(street: str, parts: tuple[str, ...]) -> None:
    assert mapping.split_street(street) == parts


@pytest.mark.parametrize(("change", "message"), [
    ({"country": "DE"}, "domestic"),
    ({"postal_code": "1234"}, "postal code"),
    ({"name": "X" * 61}, "longer than 60"),
    ({"email": "a@b"}, "6..50"),
])
def test_addresses_outside_adres_type_are_refused(change: dict[str, str], message: str) -> None:
    fields = {"name": "Jan", "street": "Długa 5", "city": "Kraków", "postal_code": "30-001", **change}
    with pytest.raises(PermanentError, match=message):
        mapping.adres(Address(**fields), role="receiver")


@pytest.mark.parametrize(("request_", "message"), [
    (shipment(service="dhl_express"), "unknown service"),
    (shipment(options={"colour": "red"}), "unknown option colour"),
    (shipment(service="paczka_pocztowa", weights=("1", "2")), "takes one parcel"),
    (shipment(service="paczka_pocztowa", cod="10"), "no cash on delivery"),
    (shipment(service="przesylka_pobraniowa"), "needs cash on delivery"),
    (shipment(service="paczka_pocztowa", pickup_point="952581"), "pickup point"),
    (shipment(pickup_point="POP-KRA1"), "not an EN placowka id"),
    (shipment(options={"format": "XXL"}), "format"),
    (shipment(options={"ostroznie": "yes"}), "true or false"),
])
def test_the_mapping_refuses_what_en_cannot_take(request_: object, message: str) -> None:
    with pytest.raises(PermanentError, match=message) as caught:
        mapping.przesylka(request_)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value) and str(caught.value).startswith("Poczta Polska (EN)")


def test_a_cod_in_another_currency_or_a_foreign_account_is_refused() -> None:
    from dataclasses import replace

    request = shipment(cod="10")
    assert request.cod is not None
    with pytest.raises(PermanentError, match="PLN"):
        mapping.przesylka(replace(request, cod=replace(request.cod, currency="EUR")))
    with pytest.raises(PermanentError, match="PL \\+ 26 digits"):
        mapping.przesylka(replace(request, cod=replace(request.cod, bank_account="DE89370400440532013000")))


def test_numbers_from_the_buffer_include_sub_parcels() -> None:
    przesylki = [{"guid": "A" * 32, "numerNadania": "00659007730000000001",
                  "subPrzesylka": [{"guid": "B" * 32, "numerNadania": "00659007730000000002"}]}]
    numbers = mapping.numbers_in_buffer(przesylki)
    booked = mapping.booking("SH-1", ["A" * 32, "B" * 32], numbers, {"idBufor": "7"})
    assert [p.tracking_number for p in booked.parcels] == ["00659007730000000001", "00659007730000000002"]
    assert booked.operator == "poczta-polska" and booked.external_id == "A" * 32
    assert booked.handles == {"idBufor": "7", "guids": f"{'A' * 32},{'B' * 32}"}
    with pytest.raises(RetryableError, match=r"parcel 2 .* has no numerNadania yet"):
        mapping.booking("SH-1", ["A" * 32, "B" * 32], {**numbers, "B" * 32: None}, {})
    with pytest.raises(PermanentError, match="without its parcel 2"):
        mapping.booking("SH-1", ["A" * 32, "C" * 32], numbers, {})


def test_errors_read_as_one_line() -> None:
    errors = [{"errorNumber": 102, "errorDesc": "Przesyłka\n o podanym guid już istnieje", "guid": "A" * 32},
              {"errorNumber": 0, "errorDesc": "drugi"}]
    assert mapping.errors_text(errors) == "[102] Przesyłka o podanym guid już istnieje; drugi"


def test_configured_pickup_windows_on_working_days_from_today() -> None:
    windows = mapping.windows_for(date(2025, 3, 4), TODAY, ("09:00-12:00", "12:00-16:00"), (1, 2, 3, 4, 5))
    assert [(w.start, w.end) for w in windows] == [(time(9), time(12)), (time(12), time(16))]
    assert mapping.windows_for(date(2025, 3, 9), TODAY, ("09:00-12:00",), (1, 2, 3, 4, 5)) == []  # a Sunday
    assert mapping.windows_for(date(2025, 3, 2), TODAY, ("09:00-12:00",), (1, 2, 3, 4, 5, 6, 7)) == []  # the past
