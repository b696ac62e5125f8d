"""KSeF's offline modes (tryby-offline.md): when an invoice issued but not yet in KSeF must be there.

- offline24, the seller's own choice at any time: by the next working day after the date of issue (P_1).
  The hub takes it when KSeF cannot be reached when an invoice is due to go, or when an invoice was not
  sent on its day of issue (KSeF would mark it offline by itself: automatyczne-okreslanie-trybu-offline.md).
- An unavailability of KSeF the Ministry announced: an invoice issued during it, by the next working day
  after it ends.
- A failure the Ministry announced (awaryjny): an invoice issued during it, or one whose time to be sent
  was still running when it was announced, by the 7th working day after it ends; a later failure announced
  within those days starts the count again from its own end.
- Announcements are the operator's to record (``hub invoices outage``): the hub cannot read the BIP.
  Until an outage that moves a deadline has ended, the deadline is not known (None).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from hub.kernel.calendar import add_working_days

FAILURE_WORKING_DAYS = 7


@dataclass(frozen=True)
class Outage:
    kind: str  # unavailable | failure
    started_on: date
    ended_on: date | None  # None: still going on


def deadline(issue_date: date, outages: Sequence[Outage] = ()) -> date | None:
    """The last day an offline invoice issued on ``issue_date`` may reach KSeF; None while an outage that
    moves it is still going on."""
    due: date | None = add_working_days(issue_date, 1)
    for outage in sorted(outages, key=lambda o: o.started_on):
        if outage.kind != "unavailable" or outage.started_on > issue_date:
            continue
        if outage.ended_on is None:
            return None
        if outage.ended_on >= issue_date:
            later = add_working_days(outage.ended_on, 1)
            due = later if due is None or later > due else due
    for outage in sorted(outages, key=lambda o: o.started_on):
        if outage.kind != "failure":
            continue
        during = outage.started_on <= issue_date and (outage.ended_on is None or outage.ended_on >= issue_date)
        within = due is not None and issue_date <= outage.started_on <= due
        if not (during or within):
            continue
        if outage.ended_on is None:
            return None
        due = add_working_days(outage.ended_on, FAILURE_WORKING_DAYS)
    return due
