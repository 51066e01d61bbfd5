"""Small charts rendered on the server as inline SVG: no JavaScript, no CDN, no network.

Every text that reaches the SVG (labels, titles) is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

PUBLISHED_COLOR = "#79aec8"
RECEIVED_COLOR = "#417690"
FAILED_COLOR = "#ba2121"


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
) -> SafeString:
    """Per-minute bars of ``received`` (the ``failed`` part of each bar in red), with
    ``published`` drawn as a line over them. One ``<title>`` tooltip per minute."""
    count = len(received)
    failed = list(failed) if failed is not None else [0] * count
    published = list(published) if published is not None else None
    labels = list(labels) if labels is not None else [str(i) for i in range(count)]
    peak = max([1, *received, *(published or [])])
    step = width / max(count, 1)
    bar = max(step - 1, 1)
    scale = (height - 2) / peak

    parts: list[str] = []
    for index, value in enumerate(received):
        x = index * step
        tip = f"{labels[index]}: {value} received"
        if failed[index]:
            tip += f", {failed[index]} failed"
        if published is not None:
            tip += f", {published[index]} published"
        bar_height = value * scale
        fail_height = min(failed[index], value) * scale
        parts.append(
            f"<g><title>{escape(tip)}</title>"
            f'<rect x="{_number(x)}" y="0" width="{_number(step)}" height="{height}" '
            f'fill="transparent"/>'
        )
        if bar_height:
            parts.append(
                f'<rect x="{_number(x)}" y="{_number(height - bar_height)}" '
                f'width="{_number(bar)}" height="{_number(bar_height)}" fill="{RECEIVED_COLOR}"/>'
            )
        if fail_height:
            parts.append(
                f'<rect x="{_number(x)}" y="{_number(height - fail_height)}" '
                f'width="{_number(bar)}" height="{_number(fail_height)}" fill="{FAILED_COLOR}"/>'
            )
        parts.append("</g>")
    if published is not None and count:
        points = " ".join(
            f"{_number(i * step + bar / 2)},{_number(height - 1 - v * scale)}"
            for i, v in enumerate(published)
        )
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{PUBLISHED_COLOR}" '
            f'stroke-width="1.5" stroke-dasharray="3 2"/>'
        )
    return _svg(width, height, title, "".join(parts))


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
