"""The built-in capabilities, one package each; ``MONITOR_CAPABILITIES`` lists the ones an app runs."""
