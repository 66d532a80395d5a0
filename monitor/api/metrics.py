"""JSON API: metrics (being built)."""
