"""Undertow's actors: one process each (feed per venue, compute workers, alerts)."""
