"""The listings' job kinds (names stored in the jobs table: never rename one)."""

from __future__ import annotations

from hub.catalog import PLAN_KIND

POLL_KIND = "erp.poll"  # read the ERP, then plan every channel
PUSH_KIND = "sync.push"  # one batch of quantity and price changes to one channel
RECONCILE_KIND = "sync.reconcile"  # read a channel's real offers; bind and correct drift

__all__ = ["PLAN_KIND", "POLL_KIND", "PUSH_KIND", "RECONCILE_KIND"]
