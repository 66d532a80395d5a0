"""Chromium for the browser suite: Debian's package, launched by Playwright."""
CHROMIUM = "/usr/bin/chromium"
#: Chromium's flags here: no sandbox as root, and no background traffic on a closed network.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
