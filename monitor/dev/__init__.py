"""Development tools: the demo host app and its routes, and the traffic generator."""
