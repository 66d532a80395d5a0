"""Web plumbing of the monitor's blueprints: security headers and guard, request bodies, errors, panels."""
