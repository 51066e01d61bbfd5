"""The overview's SVG charts (``messaging.admin.charts``): per-bar value labels on the top chart.

The labels are plain SVG ``<text>``: above a bar where there is room, else inside it;
upright where the number fits the bar's step, else turned on its side; none where a bar
is narrower than the font (the tooltip still has the value).
"""

from __future__ import annotations

import re

import pytest

from messaging.admin import charts

pytestmark = pytest.mark.unit

LABEL = re.compile(r'<text class="messaging-bar-value" ([^>]*)>(\d+)</text>')


def labels(svg: str) -> dict[str, str]:
    """Label text → its attributes."""
    return {text: attrs for attrs, text in LABEL.findall(svg)}


def test_every_non_empty_bar_has_its_value_and_empty_ones_none() -> None:
    svg = charts.activity_chart(
        received=[0, 4, 2, 0], failed=[0, 1, 0, 0], published=[1, 3, 0, 0], values=True
    )

    assert sorted(labels(svg)) == ["2", "4"]
    assert svg.count("<rect") == 4 + 2 + 1  # the bars are as before: labels are text
    assert svg.index("<polyline") < svg.index("messaging-bar-value")  # drawn over the line


def test_without_values_there_are_no_labels() -> None:
    svg = charts.activity_chart(received=[3, 4], values=False)

    assert "messaging-bar-value" not in svg
    assert "<text" not in svg


def test_on_the_overviews_top_chart_wide_numbers_turn_on_their_side() -> None:
    received = [0] * 60
    received[3], received[10], received[20] = 7, 42, 1234
    svg = charts.activity_chart(received=received, width=720, height=100, values=True)

    found = labels(svg)
    assert sorted(found, key=int) == ["7", "42", "1234"]
    # 12 px per minute: one or two digits fit upright, four do not.
    assert "rotate" not in found["7"]
    assert "rotate" not in found["42"]
    assert "rotate(-90)" in found["1234"]
    assert 'text-anchor="middle"' in found["42"]


def test_a_label_goes_above_a_low_bar_and_inside_a_tall_one() -> None:
    received = [0] * 60
    received[0], received[1], received[2], received[3] = 1, 100, 2, 5000
    svg = charts.activity_chart(received=received, width=720, height=100, values=True)

    found = labels(svg)
    for low in ("1", "2", "100"):
        assert charts.LABEL_ABOVE in found[low]
    assert charts.LABEL_INSIDE in found["5000"]  # the peak: no room above it
    assert 'text-anchor="end"' in found["5000"]  # on its side, hanging down from the top

    received = [0] * 60
    received[0], received[1] = 3, 40
    found = labels(charts.activity_chart(received=received, width=720, height=100, values=True))
    assert charts.LABEL_ABOVE in found["3"]
    assert charts.LABEL_INSIDE in found["40"]
    assert "rotate" not in found["40"]


def test_every_label_stays_inside_the_chart() -> None:
    received = [n * 37 % 1000 for n in range(60)]
    svg = charts.activity_chart(received=received, width=720, height=100, values=True)

    assert len(labels(svg)) == sum(1 for n in received if n)
    for attrs in labels(svg).values():
        upright = re.search(r' y="([\d.-]+)"', attrs)
        turned = re.search(r"translate\(([\d.]+) ([\d.-]+)\)", attrs)
        y = float(upright.group(1) if upright else turned.group(2))
        assert 0 <= y <= 100, attrs


def test_bars_narrower_than_the_font_get_no_label_but_keep_their_tooltip() -> None:
    received = [5] * 60
    svg = charts.activity_chart(received=received, width=240, height=48, values=True)

    assert "messaging-bar-value" not in svg  # 4 px per minute
    assert svg.count("5 received") == 60


def test_the_chart_with_axes_keeps_the_labels() -> None:
    received = [0, 3, 0, 12]
    chart = charts.activity_chart(received=received, width=720, height=100, values=True)
    svg = charts.with_axes(
        chart, peak=charts.peak_of(received), labels=["a", "b", "c", "d"], width=720, height=100
    )

    assert sorted(labels(svg)) == ["12", "3"]
    assert '<text x="52" y="10" text-anchor="end">12</text>' in svg  # the peak on the axis
