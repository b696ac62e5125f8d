"""Polish days free from work (ustawa o dniach wolnych od pracy): law, not configuration, like the VAT
codes. Carriers do not pick up on them, and the central bank publishes no rates on them."""

from __future__ import annotations

from datetime import date, timedelta


def easter(year: int) -> date:
    """Easter Sunday (the Gregorian computus, Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month = (h + l_ - 7 * m + 114) // 31
    day = (h + l_ - 7 * m + 114) % 31 + 1
    return date(year, month, day)


def polish_holidays(year: int) -> frozenset[date]:
    """The fixed holidays, Easter Sunday and Monday, Pentecost Sunday and Corpus Christi, and 24 December
    from 2025."""
    sunday = easter(year)
    days = {date(year, 1, 1), date(year, 1, 6), sunday, sunday + timedelta(days=1), date(year, 5, 1),
            date(year, 5, 3), sunday + timedelta(days=49), sunday + timedelta(days=60), date(year, 8, 15),
            date(year, 11, 1), date(year, 11, 11), date(year, 12, 25), date(year, 12, 26)}
    if year >= 2025:
        days.add(date(year, 12, 24))
    return frozenset(days)


def working_day(day: date) -> bool:
    """Monday to Friday and not a holiday (a Saturday is not a working day for the VAT act's terms)."""
    return day.weekday() < 5 and day not in polish_holidays(day.year)


def add_working_days(day: date, count: int) -> date:
    """The ``count``-th working day after ``day`` (1: the next working day)."""
    while count > 0:
        day += timedelta(days=1)
        if working_day(day):
            count -= 1
    return day
