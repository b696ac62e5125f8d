"""The invoicing job kinds (names stored in the jobs table: never rename one)."""

from __future__ import annotations

from hub.jobs.handlers import NOT_PERIODIC, SchedulePayload
from hub.orders import CORRECT_INVOICE, ISSUE_INVOICE

SEND = "invoicing.send"  # issued invoices to KSeF in an online session (one run at a time per connector)
STATUS = "invoicing.ksef_status"  # what KSeF made of the sent ones: KSeF numbers, UPOs, rejections

SCHEDULE_PAYLOADS = {SEND: SchedulePayload, STATUS: SchedulePayload,
                     **dict.fromkeys((ISSUE_INVOICE, CORRECT_INVOICE), NOT_PERIODIC)}
