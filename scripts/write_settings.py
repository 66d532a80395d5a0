"""Rewrite the README's settings table from monitor/config.py (``make settings``)."""
import re

from monitor.config import markdown_table

PATH = "README.md"

with open(PATH) as handle:
    text = handle.read()
text = re.sub(r"(<!-- settings:start -->).*?(<!-- settings:end -->)",
              lambda m: f"{m.group(1)}\n{markdown_table()}\n{m.group(2)}", text, flags=re.S)
with open(PATH, "w") as handle:
    handle.write(text)
