"""The ports connectors implement, and the value types they exchange with the spine.

The spine talks to every ERP, sales channel and carrier through these Protocols only, one module
per seam (``erp``, ``channel``, ``carrier``). Values are plain frozen dataclasses: money is
Decimal, times are timezone-aware UTC, quantities are whole units. A connector maps its vendor's
payloads to and from these types in its own ``mapping`` module.

This package re-exports every port and value type, so a connector may import them from here.
"""

from hub.kernel.ports.capability import Capability
from hub.kernel.ports.carrier import (
    Carrier,
    Parcel,
    Pickup,
    PickupRequest,
    Shipment,
    ShipmentRequest,
    TrackingEvent,
)
from hub.kernel.ports.channel import (
    ChangeResult,
    ChannelOrder,
    ChannelReturn,
    InvoiceRequest,
    Listing,
    ListingChange,
    OrderChannel,
    OrderEvent,
    OrderLine,
    Payment,
    RefundRequest,
    RefundResult,
    ReturnLine,
    ReturnsChannel,
    SalesChannel,
)
from hub.kernel.ports.erp import (
    DocumentBuyer,
    DocumentKind,
    DocumentLine,
    ErpBatch,
    ErpSalesSink,
    ErpSource,
    PriceRecord,
    ProductRecord,
    RateTotal,
    RejectedRecord,
    RestockDocument,
    SalesDocument,
    StockRecord,
)
from hub.kernel.types import Address, PickupPoint
from hub.kernel.vat import VatRate

__all__ = [
    "Address", "Capability", "Carrier", "ChangeResult", "ChannelOrder", "ChannelReturn", "DocumentBuyer",
    "DocumentKind", "DocumentLine", "ErpBatch", "ErpSalesSink",
    "ErpSource", "InvoiceRequest", "Listing", "ListingChange", "OrderChannel", "OrderEvent", "OrderLine", "Parcel",
    "Payment", "Pickup", "PickupPoint", "PickupRequest", "PriceRecord", "ProductRecord", "RateTotal", "RefundRequest",
    "RefundResult", "RejectedRecord", "RestockDocument", "ReturnLine", "ReturnsChannel", "SalesChannel",
    "SalesDocument", "Shipment", "ShipmentRequest", "StockRecord", "TrackingEvent", "VatRate",
]
