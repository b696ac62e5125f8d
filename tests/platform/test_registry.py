"""Ports and the connector registry: kinds come from entry points, options are validated per connector."""

from __future__ import annotations

from collections.abc import Container, Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from hub.jobs.handlers import HandlerRegistry
from hub.kernel.ports.capability import Capability
from hub.kernel.ports.channel import ChangeResult, Listing, ListingChange, SalesChannel
from hub.kernel.ports.erp import ErpBatch, ErpSource, SalesDocument
from hub.platform import registry
from hub.platform.config import SecretValue, load


class ShopOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_url: str
    consumer_secret: SecretValue
    batch_size: int = Field(100, le=100)


class FakeShop:
    def __init__(self, name: str) -> None:
        self.name = name
        self.pushed: list[ListingChange] = []

    def listings(self) -> Iterator[Listing]:
        yield Listing("1", "SKU-1", None, 3, Decimal("9.99"))

    def push(self, changes: Sequence[ListingChange], *, idempotency_key: str) -> Sequence[ChangeResult]:
        self.pushed.extend(changes)
        return [ChangeResult(c.external_id, ok=True) for c in changes]

    def order_events(self, cursor):  # type: ignore[no-untyped-def]
        return [], cursor

    def order(self, external_id):  # type: ignore[no-untyped-def]
        raise KeyError(external_id)

    def set_order_status(self, external_id, status, *, revision):  # type: ignore[no-untyped-def]
        return "2"


class FakeErp:
    name = "erp"

    def changes(self, cursor: str | None, *, limit: int, known: Container[int] = frozenset()) -> ErpBatch:
        return ErpBatch([], [], [], [], cursor_after=cursor)

    def snapshot(self, *, known: Container[int] = frozenset()) -> Iterator[ErpBatch]:
        yield self.changes(None, limit=0)

    def post_sales_document(self, document: SalesDocument) -> str:
        return document.reference


@pytest.fixture
def fake_kind() -> Iterator[registry.ConnectorSpec]:
    def handlers(name: str, options: ShopOptions, reg: HandlerRegistry) -> None:
        reg.register(f"fakeshop.push.{name}", lambda ctx: None)

    spec = registry.ConnectorSpec(
        kind="fakeshop", role="channel", description="test shop",
        capabilities=frozenset({Capability.BATCH_STOCK, Capability.BATCH_PRICE}),
        factory=lambda name, options, services: FakeShop(name), options_model=ShopOptions, handlers=handlers,
    )
    registry.register(spec)
    yield spec
    registry.unregister("fakeshop")


def test_fakes_satisfy_the_ports() -> None:
    assert isinstance(FakeShop("s"), SalesChannel)
    assert isinstance(FakeErp(), ErpSource)


def test_no_entry_point_offers_the_demo_kind_to_a_real_config() -> None:
    """The demo registers its kind in its own process only: a config naming it is an error."""
    from importlib.metadata import entry_points

    assert "demo" not in {ep.name for ep in entry_points(group=registry.ENTRY_POINT_GROUP)}
    assert "demo" in {ep.name for ep in entry_points(group="hub.commands")}  # `hub demo` still exists


def test_connector_options_are_validated_with_file_key_and_value(tmp_path: Path, fake_kind: object) -> None:
    path = tmp_path / "hub.toml"
    path.write_text('[connectors.shop1]\nkind = "fakeshop"\nbase_url = "https://shop.test"\n'
                    'consumer_secret = { env = "SHOP_SECRET" }\nbatch_size = 500\nbatchsize = 1\n')
    loaded = load(path, environ={"SHOP_SECRET": "cs_123456"})
    problems = registry.validate_connectors(loaded)
    assert f"{path}: connectors.shop1.batch_size = 500: Input should be less than or equal to 100" in problems
    assert f"{path}: connectors.shop1.batchsize = 1: unknown key" in problems

    path.write_text('[connectors.shop1]\nkind = "fakeshop"\nbase_url = "https://shop.test"\n'
                    'consumer_secret = { env = "SHOP_SECRET" }\n')
    loaded = load(path, environ={})
    (problem,) = registry.validate_connectors(loaded)
    assert problem == f"{path}: connectors.shop1.consumer_secret = <hidden>: " \
        "environment variable SHOP_SECRET is not set"


def test_connector_contributes_handlers(tmp_path: Path, fake_kind: object) -> None:
    from hub.app.wiring import build_handlers

    path = tmp_path / "hub.toml"
    path.write_text('[connectors.shop1]\nkind = "fakeshop"\nbase_url = "https://shop.test"\n'
                    'consumer_secret = "inline-is-allowed"\n')
    handlers = build_handlers(load(path, environ={}))
    assert "fakeshop.push.shop1" in handlers and "hub.prune_jobs" in handlers


def test_shipped_mappings_load(tmp_path: Path) -> None:
    """Every shipped mappings file has its capability's schema and loads; an override replaces it
    file by file, and a bad value is reported with file, key and value. (The VAT codes are law, in
    hub.kernel.vat: no mappings file.)"""
    import hub.app.wiring  # noqa: F401  (the capabilities register their mappings files)
    from hub.kernel.errors import ConfigError
    from hub.platform.mappings import SCHEMAS, SHIPPED_DIR, load_all

    loaded = load_all(None)
    assert sorted(loaded) == sorted(p.name for p in SHIPPED_DIR.glob("*.toml"))
    assert all(isinstance(m.data, SCHEMAS[name]) and not m.overridden for name, m in loaded.items())
    assert "vat_rates.toml" not in loaded and "vat_rates.toml" not in SCHEMAS
    assert {"pricing.toml", "stock.toml"} <= set(loaded)

    (tmp_path / "stock.toml").write_text('[defaults]\nsafety_buffer = 3\n[channels.shop]\npercent = 50\n')
    overridden = load_all(tmp_path)
    stock = overridden["stock.toml"]
    assert stock.overridden and stock.path == tmp_path / "stock.toml"
    rule = stock.data.rule_for("shop")  # type: ignore[attr-defined]
    assert (rule.safety_buffer, rule.percent) == (3, 50)
    assert not overridden["pricing.toml"].overridden
    (tmp_path / "stock.toml").write_text('[channels.shop]\npercent = "half"\n')
    with pytest.raises(ConfigError) as caught:
        load_all(tmp_path)
    assert caught.value.problems == [f"{tmp_path / 'stock.toml'}: channels.shop.percent = 'half': "
                                     "Input should be a valid integer"]
