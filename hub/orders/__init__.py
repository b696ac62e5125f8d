"""Orders from every channel exactly once, reservations so the last unit is never sold twice, the
status machine, automation rules, returns, and the ERP's sales documents.

Other capabilities import only the names below (an import contract test holds them to it)."""

from hub.orders.actions import run_rules
from hub.orders.kinds import CREATE_SHIPMENT, WITHDRAW_SHIPMENTS
from hub.orders.models import Order, OrderHistory, OrderLineRow
from hub.orders.reservations import consume_reflected, reserved_by_sku, units_ordered_since
from hub.orders.rules import OrderRules
from hub.orders.status import TransitionError, can_move, move, path_to, recall

__all__ = ["CREATE_SHIPMENT", "WITHDRAW_SHIPMENTS", "Order", "OrderHistory", "OrderLineRow", "OrderRules",
           "TransitionError", "can_move", "consume_reflected", "move", "path_to", "recall", "reserved_by_sku",
           "run_rules", "units_ordered_since"]
