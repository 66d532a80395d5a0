"""JSON API: cache (being built)."""
