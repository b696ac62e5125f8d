"""Carrier and broker connectors (Carrier): labels, tracking numbers, pickups."""
