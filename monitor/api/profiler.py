"""JSON API: profiler (being built)."""
