"""The topology drawing: exchanges (left) → bindings (labelled lines) → queues (right,
with their live depth), as server-rendered inline SVG — no JavaScript, no CDN. The
route of a chosen routing key is drawn in red. Every text is escaped. A node with a
``url`` is a link (its admin page); its ``role`` (``dlq``, ``delay``, ``dlx``) is a class
of its own, drawn dashed."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from ..amqp.declarations import BindingSpec

BOX_W, BOX_H, GAP, TOP = 220, 34, 14, 30
WIDTH = 860
EXCHANGE_X, QUEUE_X = 20, WIDTH - BOX_W - 20
LINE = "#79aec8"
HIT = "#ba2121"


@dataclass(frozen=True)
class Node:
    name: str
    detail: str  # "topic", "12 ready", "unreachable"…
    url: str = ""  # its admin page ("" draws no link)
    role: str = ""  # "" (a row), "dlq", "delay" or "dlx" (what the app declares itself)


def _y(index: int) -> float:
    return TOP + index * (BOX_H + GAP)


def _box(x: float, y: float, node: Node, kind: str, hit: bool) -> str:
    stroke = HIT if hit else "#417690"
    width = 2.5 if hit else 1
    name = escape(node.name if len(node.name) <= 30 else node.name[:29] + "…")
    role = f" topology-{node.role}" if node.role else ""
    dash = ' stroke-dasharray="4 3"' if node.role else ""
    box = (
        f'<g class="topology-{kind}{role}" data-name="{escape(node.name)}">'
        f"<title>{escape(node.name)} ({escape(node.detail)})</title>"
        f'<rect class="topology-box" x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="4" '
        f'fill="#f8f8f8" stroke="{stroke}" stroke-width="{width}"{dash}/>'
        f'<text x="{x + 8}" y="{y + 14}" font-size="12" font-weight="bold">{name}</text>'
        f'<text class="topology-detail" x="{x + 8}" y="{y + 28}" font-size="11" fill="#666">'
        f"{escape(node.detail)}</text>"
        "</g>"
    )
    if node.url:
        return f'<a class="topology-link" href="{escape(node.url)}">{box}</a>'
    return box


def _label(edge: BindingSpec) -> str:
    if edge.arguments:
        return ", ".join(f"{k}={v}" for k, v in edge.arguments.items())
    return edge.routing_key or "(no key)"


def _edge(edge: BindingSpec, ex_y: Mapping[str, float], q_y: Mapping[str, float], hit: bool) -> str:
    """One binding: a curve from its exchange to its queue (or back to the left column
    for an exchange destination), labelled with its key; "" when an end is not drawn."""
    source, destination = edge.source.name, edge.destination
    if source not in ex_y:
        return ""
    color, width = (HIT, 2.5) if hit else (LINE, 1.2)
    x1, y1 = EXCHANGE_X + BOX_W, ex_y[source] + BOX_H / 2
    if edge.queue is not None and edge.queue in q_y:
        x2, y2 = QUEUE_X, q_y[edge.queue] + BOX_H / 2
        path = f"M{x1},{y1} C{x1 + 120},{y1} {x2 - 120},{y2} {x2},{y2}"
        lx, ly = (x1 + x2) / 2, (y1 + y2) / 2 - 3
    elif destination is not None and destination.name in ex_y:
        y2 = ex_y[destination.name] + BOX_H / 2
        path = f"M{x1},{y1} C{x1 + 90},{y1} {x1 + 90},{y2} {x1},{y2}"
        lx, ly = x1 + 70, (y1 + y2) / 2
    else:
        return ""
    label = escape(_label(edge))
    return (
        f'<g class="topology-binding{" topology-hit" if hit else ""}">'
        f"<title>{escape(source)} → {escape(edge.destination_name)}: "
        f"{label}</title>"
        f'<path d="{path}" fill="none" stroke="{color}" stroke-width="{width}" '
        'marker-end="url(#topology-arrow)"/>'
        f'<text x="{lx}" y="{ly}" font-size="11" text-anchor="middle" fill="{color}">'
        f"{label}</text></g>"
    )


def topology_svg(
    exchanges: Sequence[Node],
    queues: Sequence[Node],
    edges: Sequence[BindingSpec],
    *,
    hit_edges: Collection[BindingSpec] = (),
    hit_queues: Collection[str] = (),
    hit_exchanges: Collection[str] = (),
    title: str = "",
) -> SafeString:
    """Boxes per exchange and queue, a line per binding labelled with its key."""
    ex_y: Mapping[str, float] = {n.name: _y(i) for i, n in enumerate(exchanges)}
    q_y: Mapping[str, float] = {n.name: _y(i) for i, n in enumerate(queues)}
    rows = max(len(exchanges), len(queues), 1)
    height = TOP + rows * (BOX_H + GAP) + 10
    parts = [
        f'<text class="topology-column" x="{EXCHANGE_X}" y="18" font-size="12" fill="#666">'
        "exchanges</text>",
        f'<text class="topology-column" x="{QUEUE_X}" y="18" font-size="12" fill="#666">'
        "queues</text>",
    ]
    parts.extend(_edge(edge, ex_y, q_y, edge in hit_edges) for edge in edges)
    for node in exchanges:
        parts.append(
            _box(EXCHANGE_X, ex_y[node.name], node, "exchange", node.name in hit_exchanges)
        )
    for node in queues:
        parts.append(_box(QUEUE_X, q_y[node.name], node, "queue", node.name in hit_queues))
    marker = (
        '<defs><marker id="topology-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="6" markerHeight="6" orient="auto-start-reverse">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{LINE}"/></marker></defs>'
    )
    return mark_safe(  # noqa: S308 - every text above is escaped
        f'<svg xmlns="http://www.w3.org/2000/svg" class="messaging-topology" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>{marker}'
        f"{''.join(parts)}</svg>"
    )
