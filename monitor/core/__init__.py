"""The monitor's infrastructure: settings, state, the shared store, the flusher, processes, audit."""
