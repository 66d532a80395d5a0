"""JSON API: cluster (being built)."""
