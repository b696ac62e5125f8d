"""Connector options take booleans as booleans: "yes", "no", 1 or 0 is a typo the config check names,
never a value quietly turned into true or false."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from connectors.allegro import SPEC as ALLEGRO_SPEC
from connectors.erp.filefeed import CSV_SPEC, JSONL_SPEC, CsvOptions
from connectors.erp.sql import SPEC as SQL_SPEC
from connectors.shops.woocommerce import SPEC as WOO_SPEC
from connectors.shops.woocommerce import WooCommerceOptions

SHOP = {"base_url": "https://sklep.example.pl", "consumer_key": "ck_x", "consumer_secret": "cs_x"}


@pytest.mark.parametrize("value", ["yes", "no", "true", "1", 1, 0])
def test_csv_decimal_comma_takes_no_truthy_value(tmp_path: Path, value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        CsvOptions.model_validate({"path": tmp_path, "decimal_comma": value})
    (error,) = caught.value.errors()  # one problem, one line (not one per member of the union)
    assert error["loc"] == ("decimal_comma",) and 'expected true, false or "auto"' in error["msg"]


@pytest.mark.parametrize("value", ["auto", True, False])
def test_csv_decimal_comma_values(tmp_path: Path, value: Any) -> None:
    options = CsvOptions.model_validate({"path": tmp_path, "decimal_comma": value})
    assert options.decimal_comma == value
    assert options.decimal_comma_flag == (None if value == "auto" else value)


@pytest.mark.parametrize("value", ["no", "yes", "false", 0, 1])
def test_woocommerce_api_refund_takes_no_truthy_value(value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        WooCommerceOptions.model_validate({**SHOP, "api_refund": value})
    (error,) = caught.value.errors()
    assert error["loc"] == ("api_refund",)


def test_woocommerce_api_refund_takes_a_boolean() -> None:
    assert WooCommerceOptions.model_validate({**SHOP, "api_refund": True}).api_refund is True
    assert WooCommerceOptions.model_validate(SHOP).api_refund is False


def _has_bool(annotation: Any) -> bool:
    if annotation is bool:
        return True
    return any(_has_bool(a) for a in typing.get_args(annotation) if not isinstance(a, str))


def _models(model: type[BaseModel]) -> list[type[BaseModel]]:
    """The model and the models its fields nest (e.g. the feeds' [epp] and [epp.sender])."""
    found = [model]
    for field in model.model_fields.values():
        for arg in (field.annotation, *typing.get_args(field.annotation)):
            if isinstance(arg, type) and issubclass(arg, BaseModel) and arg not in found:
                found.extend(m for m in _models(arg) if m not in found)
    return found


def test_every_boolean_option_of_every_connector_is_strict() -> None:
    checked = []
    for spec in (WOO_SPEC, ALLEGRO_SPEC, CSV_SPEC, JSONL_SPEC, SQL_SPEC):
        assert spec.options_model is not None
        for model in _models(spec.options_model):
            for name, field in model.model_fields.items():
                if not _has_bool(field.annotation):
                    continue
                adapter: TypeAdapter[Any] = TypeAdapter(
                    typing.Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation)
                assert adapter.validate_python(True) is True
                for typo in ("yes", "no", 1, 0):
                    with pytest.raises(ValidationError):
                        adapter.validate_python(typo)
                checked.append(f"{model.__name__}.{name}")
    assert {"WooCommerceOptions.api_refund", "CsvOptions.decimal_comma"} <= set(checked)
