"""Web plumbing shared by the monitor's blueprints: security headers, error answers, panels."""
