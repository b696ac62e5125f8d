"""Orders from every channel exactly once, reservations so the last unit is never sold twice, the
status machine, automation rules, returns, and the ERP's sales documents.

Other capabilities import only the names below (an import contract test holds them to it)."""

from hub.orders.actions import run_rules
from hub.orders.kinds import CORRECT_INVOICE, CREATE_SHIPMENT, ISSUE_INVOICE, WITHDRAW_SHIPMENTS
from hub.orders.models import Order, OrderHistory, OrderLineRow, ReturnRow
from hub.orders.reservations import consume_reflected, reserved_by_sku, reserved_units_of, units_ordered_since
from hub.orders.rules import OrderRules
from hub.orders.sales_documents import nip_problem, with_charge_rates
from hub.orders.status import TransitionError, can_move, move, path_to, recall

__all__ = ["CORRECT_INVOICE", "CREATE_SHIPMENT", "ISSUE_INVOICE", "WITHDRAW_SHIPMENTS", "Order", "OrderHistory",
           "OrderLineRow", "OrderRules", "ReturnRow", "TransitionError", "can_move", "consume_reflected", "move",
           "nip_problem", "path_to", "recall", "reserved_by_sku", "reserved_units_of", "run_rules",
           "units_ordered_since", "with_charge_rates"]
