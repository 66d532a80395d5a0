"""JSON API: audit (being built)."""
