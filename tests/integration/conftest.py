"""Fixtures shared by the integration tests."""

from fake_connectors import fakes  # noqa: F401  (the fake-erp / fake-channel connector kinds)
