"""The orders' job kinds (names stored in the jobs table: never rename one)."""

from __future__ import annotations

from pydantic import Field

from hub.jobs.handlers import NOT_PERIODIC, ChannelPayload

ORDERS_POLL = "orders.poll"  # read a channel's order journal from the stored cursor
ORDERS_RECONCILE = "orders.reconcile"  # re-read orders changed recently: what the journal missed
TO_ERP = "orders.to_erp"  # book an accepted order as a sales document
ERP_CANCEL = "orders.erp_cancel"  # reverse a booked order that was cancelled
PUSH_STATUS = "orders.push_status"  # tell the channel a status the hub set
RETURNS_POLL = "returns.poll"  # read a channel's returns
REFUND = "returns.refund"  # money back through the channel, once
RESTOCK = "returns.restock"  # returned goods back into the ERP's stock
REJECT = "returns.reject"  # tell the channel a return was rejected
# handled by hub.shipping (the capability above the orders), named here so automation can ask for it
CREATE_SHIPMENT = "shipping.create"  # a shipment for an order, from the delivery mapping
# the parcels of a cancelled order stopped (cancelled with the carrier) before they leave; for an order the
# channel cancelled after the hub shipped it, the order is cancelled once none is on its way
WITHDRAW_SHIPMENTS = "shipping.withdraw"
# handled by hub.invoicing (above the orders): the order's invoice, issued once (the issue_invoice action);
# a corrective invoice for an accepted return
ISSUE_INVOICE = "invoicing.issue"
CORRECT_INVOICE = "invoicing.correct"


class ReconcilePayload(ChannelPayload):
    hours: float = Field(24, gt=0, le=24 * 90)  # how far back the first re-read goes


# what a [schedule.NAME] payload may hold, per kind
SCHEDULE_PAYLOADS = {ORDERS_POLL: ChannelPayload, ORDERS_RECONCILE: ReconcilePayload, RETURNS_POLL: ChannelPayload,
                     **dict.fromkeys((TO_ERP, ERP_CANCEL, PUSH_STATUS, REFUND, RESTOCK, REJECT), NOT_PERIODIC)}
