"""mappings/delivery.toml and [shipping] are checked at load: a carrier, channel, sender or service that
points nowhere is one line naming the file, the key and the value (exit 2), never silence."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from hub.shipping.delivery_map import DeliveryFile, Template
from hub.shipping.parcels import ParcelProblem, plan_parcel
from tests.cli.test_cli import run_cli, write_config

CARRIER = """
[connectors.inpost-main]
kind = "inpost"
token = "t0k3n"
organization_id = 12
services = ["inpost_locker_standard", "inpost_courier_standard"]
[shipping]
default_sender = "mag"
[shipping.senders.mag]
name = "Sklep"
street = "Magazynowa 5"
city = "Poznań"
postal_code = "60-001"
phone = "600700800"
email = "m@example.pl"
"""


def _check(capsys: pytest.CaptureFixture[str], tmp_path: Path, delivery: str, extra: str = CARRIER
           ) -> tuple[int, str]:
    maps = tmp_path / "maps"
    maps.mkdir(exist_ok=True)
    (maps / "delivery.toml").write_text(delivery)
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", '[mappings]\ndir = "maps"\n' + extra)
    code, _, err = run_cli(capsys, "--config", str(config), "config", "check")
    return code, err


ROUTE = ('[templates.box]\npackaging_kg = "0.3"\n'
         '[default]\ncarrier = "{carrier}"\nservice = "{service}"\ntemplate = "box"\n')


def test_a_valid_delivery_mapping_passes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = _check(capsys, tmp_path, ROUTE.format(carrier="inpost-main", service="inpost_courier_standard"))
    assert code == 0, err


def test_an_unknown_carrier_account_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = _check(capsys, tmp_path, ROUTE.format(carrier="inpost-mian", service="inpost_courier_standard"))
    assert code == 2
    assert (f"{tmp_path / 'maps' / 'delivery.toml'}: default.carrier = 'inpost-mian': no carrier connector of that "
            "name (configured carriers: inpost-main)") in err


def test_a_service_the_carrier_does_not_offer_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = _check(capsys, tmp_path, ROUTE.format(carrier="inpost-main", service="inpost_courier_palette"))
    assert code == 2
    assert ("default.service = 'inpost_courier_palette': carrier inpost-main does not offer it "
            "(services: inpost_locker_standard, inpost_courier_standard)") in err


def test_a_method_of_an_unknown_channel_and_a_missing_template(capsys: pytest.CaptureFixture[str],
                                                              tmp_path: Path) -> None:
    route = ROUTE.format(carrier="inpost-main", service="inpost_courier_standard")
    code, err = _check(capsys, tmp_path, route + '[[methods]]\nchannel = "sklep"\nmethod = "Paczkomaty"\n'
                                                 'carrier = "inpost-main"\nservice = "inpost_locker_standard"\n'
                                                 'template = "box"\n')
    assert code == 2 and "methods.0.channel = 'sklep': no channel connector of that name" in err
    code, err = _check(capsys, tmp_path, route.replace('template = "box"', 'template = "boks"'))
    assert code == 2 and "default.template = 'boks': no such template (templates: box)" in err


def test_weights_are_strings_and_lockers_fit_by_weight() -> None:
    with pytest.raises(ValueError, match="write weights as strings"):
        Template.model_validate({"packaging_kg": 0.3})
    locker = Template.model_validate({"packaging_kg": "0.10", "lockers": [
        {"size": "small", "max_kg": "1"}, {"size": "medium", "max_kg": "5"}, {"size": "large", "max_kg": "25"}]})
    assert plan_parcel(Decimal("0.900"), locker).template == "small"
    assert plan_parcel(Decimal("0.950"), locker).template == "medium"  # 1.05 kg with the packaging
    with pytest.raises(ParcelProblem, match="over the largest locker size"):
        plan_parcel(Decimal("30"), locker)
    with pytest.raises(ValueError, match="ascending"):
        Template.model_validate({"lockers": [{"size": "large", "max_kg": "25"}, {"size": "small", "max_kg": "1"}]})
    assert not DeliveryFile().configured
