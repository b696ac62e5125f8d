"""Names that must point somewhere: a connector named in a mappings file or a schedule payload must
be defined under ``[connectors.*]`` with the right role, or the config is refused with the place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.platform import registry
from hub.platform.config import LoadedConfig

# mappings files whose [channels.NAME] / [accounts.NAME] tables name a channel connector
_CHANNEL_TABLES = {"pricing.toml": "channels", "stock.toml": "channels", "order_status.toml": "accounts"}
# schedule payload keys that name a connector, and the role it must have
_PAYLOAD_ROLES = {"channel": "channel", "erp": "erp"}


def unknown_connectors(loaded: LoadedConfig, mappings: Mapping[str, Any]) -> list[str]:
    """Every place a connector name points nowhere: file, key and value, and what is configured."""
    problems = []
    channels = registry.names_with_role(loaded, "channel")
    for filename, table in _CHANNEL_TABLES.items():
        loaded_file = mappings.get(filename)
        if loaded_file is None:
            continue
        for name in sorted(getattr(loaded_file.data, table, {}) or {}):
            if name not in channels:
                problems.append(f"{loaded_file.path}: {table}.{name}: no channel connector named {name!r} "
                                f"(configured channels: {', '.join(channels) or 'none'})")
    problems += _status_kinds(mappings) + _automation_channels(mappings, channels)
    problems += _delivery_names(loaded, mappings, channels)
    for schedule, entry in sorted(loaded.settings.schedule.items()):
        for key, role in _PAYLOAD_ROLES.items():
            value = entry.payload.get(key)
            if value is None:
                continue
            known = registry.names_with_role(loaded, role)
            if value not in known:
                what = "channel" if role == "channel" else "ERP"
                problems.append(f"{loaded.source_label}: schedule.{schedule}.payload.{key} = {value!r}: no {what} "
                                f"connector of that name (configured: {', '.join(known) or 'none'})")
    return problems


def _status_kinds(mappings: Mapping[str, Any]) -> list[str]:
    """``[kinds.KIND]`` of order_status.toml must name a channel connector kind (a typo maps nothing)."""
    loaded_file = mappings.get("order_status.toml")
    if loaded_file is None:
        return []
    kinds = sorted(kind for kind, spec in registry.specs().items() if spec.role == "channel")
    return [f"{loaded_file.path}: kinds.{kind}: no channel connector kind {kind!r} (kinds: {', '.join(kinds)})"
            for kind in sorted(loaded_file.data.kinds) if kind not in kinds]


def _automation_channels(mappings: Mapping[str, Any], channels: list[str]) -> list[str]:
    """A rule's ``when.channel`` names channel connectors: one that is not configured never matches."""
    loaded_file = mappings.get("automation.toml")
    if loaded_file is None:
        return []
    return [f"{loaded_file.path}: rules.{number}.when.channel = {name!r}: no channel connector of that name "
            f"(configured channels: {', '.join(channels) or 'none'})"
            for number, rule in enumerate(loaded_file.data.rules) for name in rule.when.channel or ()
            if name not in channels]


def _delivery_names(loaded: LoadedConfig, mappings: Mapping[str, Any], channels: list[str]) -> list[str]:
    """Carrier accounts and channels named by delivery.toml, automation's book_shipment and
    [shipping]: a name that points nowhere would leave orders unshipped without a word."""
    carriers = registry.names_with_role(loaded, "carrier")
    known = f"(configured carriers: {', '.join(carriers) or 'none'})"
    problems = []
    delivery = mappings.get("delivery.toml")
    if delivery is not None:
        for where, route in delivery.data.routes():
            if route.carrier not in carriers:
                problems.append(f"{delivery.path}: {where}.carrier = {route.carrier!r}: no carrier connector of "
                                f"that name {known}")
            else:
                offered = _services(loaded, route.carrier)
                if offered and route.service not in offered:
                    problems.append(f"{delivery.path}: {where}.service = {route.service!r}: carrier {route.carrier} "
                                    f"does not offer it (services: {', '.join(offered)})")
            channel = getattr(route, "channel", None)
            if channel is not None and channel not in channels:
                problems.append(f"{delivery.path}: {where}.channel = {channel!r}: no channel connector of that name "
                                f"(configured channels: {', '.join(channels) or 'none'})")
            sender = route.sender or delivery.data.templates[route.template].sender
            if sender is not None and sender not in loaded.settings.shipping.senders:
                problems.append(f"{delivery.path}: {where}: sender {sender!r} is not in [shipping.senders]")
    automation = mappings.get("automation.toml")
    if automation is not None:
        problems += [f"{automation.path}: rules.{number}.do.{i}.carrier = {action.carrier!r}: no carrier connector "
                     f"of that name {known}"
                     for number, rule in enumerate(automation.data.rules) for i, action in enumerate(rule.do)
                     if action.action == "book_shipment" and action.carrier is not None
                     and action.carrier not in carriers]
    problems += [f"{loaded.source_label}: shipping.standing_pickups: {name!r} is no carrier connector {known}"
                 for name in loaded.settings.shipping.standing_pickups if name not in carriers]
    return problems


def _services(loaded: LoadedConfig, carrier: str) -> list[str]:
    """The service codes a carrier account's options list (its ``services``); empty when the carrier
    reads them from its API at run time (then the carrier refuses an unknown one at booking)."""
    conn = loaded.settings.connectors[carrier]
    options = registry.options_for(carrier, conn, loaded.environ)
    return list(getattr(options, "services", None) or [])
