"""When an offline invoice must be in KSeF (hub.invoicing.offline.deadline), by tryby-offline.md's rules and
its own worked example."""

from __future__ import annotations

from datetime import date

from hub.invoicing.offline import Outage, deadline
from hub.kernel.calendar import add_working_days, working_day


def test_offline24_is_due_the_next_working_day() -> None:
    assert deadline(date(2025, 7, 8)) == date(2025, 7, 9)  # Wednesday -> Thursday
    assert deadline(date(2025, 7, 11)) == date(2025, 7, 14)  # Friday -> Monday
    assert deadline(date(2026, 12, 23)) == date(2026, 12, 28)  # 24-26 December are holidays, 27th a Sunday
    assert deadline(date(2026, 4, 30)) == date(2026, 5, 4)  # 1 May a Friday, 3 May a Sunday


def test_the_documents_example_a_failure_announced_while_an_offline24_invoice_waits() -> None:
    # issued Wednesday 2025-07-08 (due the 9th); a failure announced on the 9th ends Saturday the 12th:
    # 7 working days from its end, Tuesday 2025-07-22
    failure = Outage("failure", date(2025, 7, 9), date(2025, 7, 12))
    assert deadline(date(2025, 7, 8), [failure]) == date(2025, 7, 22)
    # not yet over: the deadline is not known
    assert deadline(date(2025, 7, 8), [Outage("failure", date(2025, 7, 9), None)]) is None
    # announced after the invoice was due: it does not move it
    assert deadline(date(2025, 7, 8), [Outage("failure", date(2025, 7, 10), date(2025, 7, 12))]) == date(2025, 7, 9)


def test_a_later_failure_within_the_seven_days_starts_the_count_again() -> None:
    first = Outage("failure", date(2025, 7, 9), date(2025, 7, 12))
    second = Outage("failure", date(2025, 7, 18), date(2025, 7, 19))  # within the days up to the 22nd
    assert deadline(date(2025, 7, 8), [second, first]) == add_working_days(date(2025, 7, 19), 7) == date(2025, 7, 29)


def test_an_announced_unavailability_moves_it_to_the_day_after_its_end() -> None:
    outage = Outage("unavailable", date(2025, 7, 8), date(2025, 7, 10))
    assert deadline(date(2025, 7, 8), [outage]) == date(2025, 7, 11)
    assert deadline(date(2025, 7, 8), [Outage("unavailable", date(2025, 7, 7), None)]) is None
    assert deadline(date(2025, 7, 11), [outage]) == date(2025, 7, 14)  # issued after it: offline24


def test_working_days() -> None:
    assert not working_day(date(2026, 12, 24)) and not working_day(date(2026, 12, 5)) and working_day(date(2026, 12, 2))
