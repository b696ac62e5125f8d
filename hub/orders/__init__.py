"""Orders from every channel exactly once, reservations so the last unit is never sold twice, the
status machine, automation rules, returns, and the ERP's sales documents.

Other capabilities import only the names below (an import contract test holds them to it)."""

from hub.orders.reservations import consume_reflected, reserved_by_sku, units_ordered_since

__all__ = ["consume_reflected", "reserved_by_sku", "units_ordered_since"]
