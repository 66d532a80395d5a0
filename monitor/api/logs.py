"""JSON API: logs (being built)."""
