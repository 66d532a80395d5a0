"""Numbers and times in the one format the dashboard uses (``monitor/web/format.py``)."""
import pytest
from bs4 import BeautifulSoup

from monitor.web import format


@pytest.mark.parametrize("value, text", [
    (297.854, "298 ms"), (12.345, "12 ms"), (4.23, "4.2 ms"), (0.84, "0.84 ms"), (1234.5, "1.23 s"),
    (0, "0 ms"), (None, "–"),
])
def test_latencies_have_two_or_three_significant_digits_and_a_unit(value, text):
    assert format.fmt_ms(value) == text


@pytest.mark.parametrize("value, text", [
    (0, "0 B"), (512, "512 B"), (1300, "1.27 KiB"), (1.2 * 2**20, "1.2 MiB"), (5 * 2**30, "5 GiB"),
])
def test_sizes_are_in_binary_units(value, text):
    assert format.fmt_bytes(value) == text
    assert format.fmt_mb(68.5) == "68.5 MiB"


def test_counts_rates_shares_and_spans():
    assert (format.fmt_count(1, "request"), format.fmt_count(3, "request")) == ("1 request", "3 requests")
    assert format.fmt_count(1234, "entry", "entries") == "1,234 entries"
    assert (format.fmt_num(1177), format.fmt_num(0.1234), format.fmt_num(None)) == ("1,177", "0.123", "–")
    assert (format.fmt_rate(17.66), format.fmt_rate(0.25), format.fmt_percent(4.21), format.fmt_percent(57.3)) \
        == ("17.7/s", "0.25/s", "4.2%", "57%")
    assert [format.fmt_duration(s) for s in (45, 200, 7500, 3 * 86400 + 4 * 3600 + 5)] \
        == ["45 s", "3 min 20 s", "2 h 5 min", "3 d 4 h"]


def test_a_moment_is_a_time_element_whatever_it_came_as():
    from_epoch = BeautifulSoup(str(format.fmt_time(1796083999.123)), "html.parser").time
    from_iso = BeautifulSoup(str(format.fmt_time("2026-12-01T00:13:19.123+00:00")), "html.parser").time
    assert from_epoch.attrs == from_iso.attrs == {"datetime": "2026-12-01T00:13:19Z", "data-ts": "1796083999.123"}
    assert from_epoch.text == "2026-12-01 00:13:19 UTC"
    assert format.fmt_time(None) == "–"


def test_outcomes_are_coloured_by_meaning_and_escaped():
    assert str(format.fmt_outcome("done")) == '<span class="badge outcome-ok">done</span>'
    assert str(format.fmt_outcome("rate_limited")) == '<span class="badge outcome-bad">rate limited</span>'
    assert str(format.fmt_outcome("<b>")) == '<span class="badge outcome-neutral">&lt;b&gt;</span>'

