"""The shipping job kinds (names stored in the jobs table: never rename one)."""

from __future__ import annotations

from hub.jobs.handlers import NOT_PERIODIC, SchedulePayload
from hub.orders import CREATE_SHIPMENT, WITHDRAW_SHIPMENTS

BOOK = "shipping.book"  # book one shipment with its carrier, once (our reference)
LABEL = "shipping.label"  # fetch and store its label
PUSH_TRACKING = "shipping.push_tracking"  # tracking numbers to the order's channel
CANCEL = "shipping.cancel"  # cancel one shipment with its carrier
TRACK = "shipping.track"  # follow the parcels on their way (periodic)
PICKUPS = "shipping.pickups"  # book the day's courier pickups (periodic, acts at the cut-off)
BOOK_PICKUP = "shipping.book_pickup"  # one carrier account's pickup for one day
CANCEL_PICKUP = "shipping.cancel_pickup"

SCHEDULE_PAYLOADS = {TRACK: SchedulePayload, PICKUPS: SchedulePayload,
                     **dict.fromkeys((CREATE_SHIPMENT, WITHDRAW_SHIPMENTS, BOOK, LABEL, PUSH_TRACKING, CANCEL,
                                      BOOK_PICKUP, CANCEL_PICKUP), NOT_PERIODIC)}
