"""Small charts rendered on the server as inline SVG: no JavaScript, no CDN, no network.

Every text that reaches the SVG (labels, titles) is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

PUBLISHED_COLOR = "#79aec8"
RECEIVED_COLOR = "#417690"
FAILED_COLOR = "#ba2121"

#: Bar value labels (:meth:`_Grid.label`): font size and the width of one digit in it.
LABEL_FONT_SIZE = 9
LABEL_DIGIT_WIDTH = 5.5
#: A label above its bar (dark, with a white halo over the line), or inside it (white).
LABEL_ABOVE = 'fill="#333" stroke="#fff" stroke-width="2" paint-order="stroke"'
LABEL_INSIDE = 'fill="#fff"'


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def activity_chart(
    *,
    received: Sequence[int],
    failed: Sequence[int] | None = None,
    published: Sequence[int] | None = None,
    labels: Sequence[str] | None = None,
    width: int = 240,
    height: int = 48,
    title: str = "",
    values: bool = False,
) -> SafeString:
    """Per-minute bars of ``received`` (the ``failed`` part of each bar in red), with
    ``published`` drawn as a line over them. One ``<title>`` tooltip per minute.
    ``values``: each non-empty bar's count printed on it too (see :meth:`_Grid.label`)."""
    count = len(received)
    failed = list(failed) if failed is not None else [0] * count
    published = list(published) if published is not None else None
    labels = list(labels) if labels is not None else [str(i) for i in range(count)]
    peak = max([1, *received, *(published or [])])
    grid = _Grid(step=width / max(count, 1), height=height, scale=(height - 2) / peak)
    parts = [
        grid.minute(
            index,
            labels[index],
            value,
            failed[index],
            None if published is None else published[index],
        )
        for index, value in enumerate(received)
    ]
    if published is not None and count:
        parts.append(grid.line(published))
    if values:  # last, so no bar or line hides them
        parts.extend(grid.label(index, value) for index, value in enumerate(received) if value)
    return _svg(width, height, title, "".join(parts))


def with_axes(
    chart: SafeString,
    *,
    peak: int,
    labels: Sequence[str],
    width: int,
    height: int,
    unit: str = "per minute",
) -> SafeString:
    """``chart`` (an :func:`activity_chart` of ``width`` × ``height``) with a value axis
    (0 and the peak, ``unit``) on the left and the first, middle and last minute below."""
    left, below = 56, 16
    ticks = [f'<text x="{left - 4}" y="{height}" text-anchor="end">0</text>']
    ticks.append(f'<text x="{left - 4}" y="10" text-anchor="end">{peak}</text>')
    ticks.append(f'<text x="2" y="{height // 2 + 4}" font-size="9">{escape(unit)}</text>')
    if labels:
        spots = {0: "start", len(labels) // 2: "middle", len(labels) - 1: "end"}
        step = width / len(labels)
        for index, anchor in spots.items():
            x = left + index * step + (step / 2 if anchor == "middle" else 0)
            x = left + width if anchor == "end" else x
            ticks.append(
                f'<text x="{_number(x)}" y="{height + below - 3}" text-anchor="{anchor}">'
                f"{escape(labels[index])}</text>"
            )
    axis = (
        f'<line x1="{left}" y1="0" x2="{left}" y2="{height}" stroke="#888"/>'
        f'<line x1="{left}" y1="{height}" x2="{left + width}" y2="{height}" stroke="#888"/>'
    )
    inner = str(chart).replace("<svg ", f'<svg x="{left}" y="0" ', 1)
    total_width, total_height = left + width + 4, height + below
    return mark_safe(  # noqa: S308 - every text above is escaped or a number
        f'<svg xmlns="http://www.w3.org/2000/svg" class="messaging-chart messaging-axes" '
        f'width="{total_width}" height="{total_height}" '
        f'viewBox="0 0 {total_width} {total_height}" font-size="10" fill="#333">'
        f"{axis}{''.join(ticks)}{inner}</svg>"
    )


def peak_of(received: Sequence[int], published: Sequence[int] | None = None) -> int:
    """The top of an activity chart's scale (as :func:`activity_chart` draws it)."""
    return max([1, *received, *(published or [])])


@dataclass(frozen=True)
class _Grid:
    """Where an activity chart's minutes go: ``step`` pixels per minute, ``scale``
    pixels per message, bars one pixel narrower than a step."""

    step: float
    height: int
    scale: float

    @property
    def bar(self) -> float:
        return max(self.step - 1, 1)

    def minute(
        self, index: int, label: str, received: int, failed: int, published: int | None
    ) -> str:
        """One minute's group: its tooltip, a transparent hit area, and its bars."""
        x = index * self.step
        tip = f"{label}: {received} received"
        if failed:
            tip += f", {failed} failed"
        if published is not None:
            tip += f", {published} published"
        parts = [
            f"<g><title>{escape(tip)}</title>"
            f'<rect x="{_number(x)}" y="0" width="{_number(self.step)}" height="{self.height}" '
            f'fill="transparent"/>'
        ]
        bar_height = received * self.scale
        fail_height = min(failed, received) * self.scale
        if bar_height:
            parts.append(self._bar(x, bar_height, RECEIVED_COLOR))
        if fail_height:
            parts.append(self._bar(x, fail_height, FAILED_COLOR))
        parts.append("</g>")
        return "".join(parts)

    def _bar(self, x: float, bar_height: float, color: str) -> str:
        return (
            f'<rect x="{_number(x)}" y="{_number(self.height - bar_height)}" '
            f'width="{_number(self.bar)}" height="{_number(bar_height)}" fill="{color}"/>'
        )

    def label(self, index: int, value: int) -> str:
        """``value`` as text on its bar: above it where there is room, else inside at its
        top (white); upright when it fits the bar's step, else turned on its side. Left
        out (the tooltip still has it) only where a bar is narrower than the font."""
        if self.bar < LABEL_FONT_SIZE:
            return ""
        text = str(value)
        length = len(text) * LABEL_DIGIT_WIDTH
        centre = index * self.step + self.bar / 2
        bar_height = value * self.scale
        top = self.height - bar_height
        upright = length <= self.step
        needed = (LABEL_FONT_SIZE + 1) if upright else (length + 3)
        above = top >= needed or top >= bar_height
        style = LABEL_ABOVE if above else LABEL_INSIDE
        if upright:
            y = top - 2 if above else top + LABEL_FONT_SIZE
            place = f'x="{_number(centre)}" y="{_number(y)}" text-anchor="middle"'
        else:
            y = top - 2 if above else top + 2
            anchor = "start" if above else "end"
            place = (
                f'transform="translate({_number(centre + LABEL_FONT_SIZE / 2 - 1)} '
                f'{_number(y)}) rotate(-90)" text-anchor="{anchor}"'
            )
        return (
            f'<text class="messaging-bar-value" {place} font-size="{LABEL_FONT_SIZE}" '
            f"{style}>{text}</text>"
        )

    def line(self, published: Sequence[int]) -> str:
        """The dashed ``published`` line through the middle of each bar."""
        points = " ".join(
            f"{_number(i * self.step + self.bar / 2)},{_number(self.height - 1 - v * self.scale)}"
            for i, v in enumerate(published)
        )
        return (
            f'<polyline points="{points}" fill="none" stroke="{PUBLISHED_COLOR}" '
            f'stroke-width="1.5" stroke-dasharray="3 2"/>'
        )


def latency_chart(
    median: float | None, p95: float | None, *, scale_max: float, width: int = 120, height: int = 14
) -> SafeString:
    """A horizontal bar: p95 (light) with the median (dark) over it, on a shared scale."""
    if median is None or p95 is None:
        return _svg(width, height, "no latency data", "")
    top = max(scale_max, p95, 1e-9)
    p95_width = width * p95 / top
    median_width = width * median / top
    body = (
        f'<rect x="0" y="2" width="{_number(p95_width)}" height="{height - 4}" '
        f'fill="{PUBLISHED_COLOR}"/>'
        f'<rect x="0" y="2" width="{_number(median_width)}" height="{height - 4}" '
        f'fill="{RECEIVED_COLOR}"/>'
    )
    title = f"median {median:.3f} s, p95 {p95:.3f} s"
    return _svg(width, height, title, body)


def _svg(width: int, height: int, title: str, body: str) -> SafeString:
    head = format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="messaging-chart" width="{}" '
        'height="{}" viewBox="0 0 {} {}" role="img" aria-label="{}"><title>{}</title>',
        width,
        height,
        width,
        height,
        title,
        title,
    )
    # ``body`` is built above from numbers and escaped text only.
    return mark_safe(f"{head}{body}</svg>")  # noqa: S308
