"""Rewrite the settings table in docs/settings.md from the code (``make settings``)."""
import re
import sys

from monitor.core.config import markdown_table

PATH = sys.argv[1] if len(sys.argv) > 1 else "docs/settings.md"
MARKERS = re.compile(r"(<!-- settings:start -->).*?(<!-- settings:end -->)", flags=re.S)

with open(PATH) as handle:
    text = handle.read()
if not MARKERS.search(text):
    sys.exit(f"{PATH}: no <!-- settings:start --> ... <!-- settings:end --> markers")
text = MARKERS.sub(lambda m: f"{m.group(1)}\n{markdown_table()}\n{m.group(2)}", text)
with open(PATH, "w") as handle:
    handle.write(text)
