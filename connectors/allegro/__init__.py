"""Allegro marketplace connector (SalesChannel)."""
