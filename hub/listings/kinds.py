"""The listings' job kinds (names stored in the jobs table: never rename one)."""

from __future__ import annotations

from pydantic import Field, StrictBool

from hub.catalog import PLAN_KIND
from hub.jobs.handlers import NOT_PERIODIC, ChannelPayload, SchedulePayload

POLL_KIND = "erp.poll"  # read the ERP, then plan every channel
PUSH_KIND = "sync.push"  # one batch of quantity and price changes to one channel
RECONCILE_KIND = "sync.reconcile"  # read a channel's real offers; bind and correct drift



class ErpPollPayload(SchedulePayload):
    erp: str = Field(min_length=1)
    full: StrictBool = False  # a whole snapshot instead of the changes since the cursor


# what a [schedule.NAME] payload may hold, per kind
SCHEDULE_PAYLOADS = {POLL_KIND: ErpPollPayload, RECONCILE_KIND: ChannelPayload, PLAN_KIND: SchedulePayload,
                     PUSH_KIND: NOT_PERIODIC}

__all__ = ["PLAN_KIND", "POLL_KIND", "PUSH_KIND", "RECONCILE_KIND", "SCHEDULE_PAYLOADS"]
