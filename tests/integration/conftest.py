"""Fixtures shared by the integration tests."""

from fake_connectors import fakes, order_fakes  # noqa: F401  (the fake connector kinds)
