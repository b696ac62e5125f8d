"""What a connector can do; the spine checks capabilities, never connector types."""

from __future__ import annotations

from enum import StrEnum


class Capability(StrEnum):
    """What a connector can do; the spine checks capabilities, never connector types."""

    # ERP
    ERP_INCREMENTAL = "erp.incremental"  # changes since a cursor
    ERP_SNAPSHOT = "erp.snapshot"  # full snapshot on demand
    ERP_SALES_DOCUMENTS = "erp.sales_documents"  # accepts orders as sales documents
    ERP_RESTOCK = "erp.restock"  # accepts returned goods
    # channels
    LISTINGS_READ = "channel.listings_read"
    BATCH_STOCK = "channel.batch_stock"
    BATCH_PRICE = "channel.batch_price"
    ORDERS = "channel.orders"
    ORDER_STATUS = "channel.order_status"
    TRACKING_PUSH = "channel.tracking_push"
    RETURNS = "channel.returns"
    REFUNDS = "channel.refunds"
    # carriers
    LABEL_PDF = "carrier.label_pdf"
    LABEL_ZPL = "carrier.label_zpl"
    PICKUP = "carrier.pickup"
    TRACKING = "carrier.tracking"
    CASH_ON_DELIVERY = "carrier.cod"
    PICKUP_POINTS = "carrier.pickup_points"
    LOOKUP_BY_REFERENCE = "carrier.lookup_by_reference"
    # exchange rates (a central bank) and e-invoicing (KSeF)
    EXCHANGE_RATES = "rates.exchange"  # the average rate of a currency published before a day
    EINVOICE_ONLINE = "einvoicing.online"  # invoices sent in an online session, read back by their hash
    EINVOICE_BATCH = "einvoicing.batch"  # a backlog sent as one archive in a batch session
    ACCOUNTING_EXPORT = "accounting.export"  # issued invoices in an accounting program's import format
