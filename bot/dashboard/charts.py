"""Charts as inline SVG, drawn on the server: no script, no CDN, readable without colour.

Each chart carries a <title> and <desc> stating its numbers, so a screen reader
(and a test) gets the data, not just a picture.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.dashboard.html import Markup, esc, join, tag


def line_chart(
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    title: str,
    low: float = 1,
    high: float = 5,
    width: int = 420,
    height: int = 200,
    chart_id: str = "chart",
) -> Markup:
    """A line with dots over `labels`; gaps (None) break the line. Scales to its container."""
    left, right, top, bottom = 30, 10, 12, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    count = max(1, len(labels))

    def x(i: int) -> float:
        return left + (plot_w * (i + 0.5) / count)

    def y(v: float) -> float:
        return top + plot_h * (1 - (min(max(v, low), high) - low) / ((high - low) or 1))

    grid = []
    for level in range(int(low), int(high) + 1):
        grid.append(tag("line", x1=left, x2=width - right, y1=f"{y(level):.1f}", y2=f"{y(level):.1f}", class_="grid"))
        grid.append(tag("text", level, x=left - 8, y=f"{y(level) + 4:.1f}", text_anchor="end", class_="axis"))
    step = max(1, (len(labels) + 7) // 8)  # at most ~8 labels: readable on a phone
    ticks = [
        tag("text", label.split("-")[-1], x=f"{x(i):.1f}", y=height - 12, text_anchor="middle", class_="axis")
        for i, label in enumerate(labels)
        if i % step == 0 or i == len(labels) - 1
    ]
    segments: list[list[tuple[float, float]]] = [[]]
    dots = []
    for i, value in enumerate(values):
        if value is None:
            segments.append([])
            continue
        point = (x(i), y(value))
        segments[-1].append(point)
        dots.append(
            tag(
                "circle",
                tag("title", f"{labels[i]}: {value:.1f}"),
                cx=f"{point[0]:.1f}",
                cy=f"{point[1]:.1f}",
                r=4,
                class_="dot",
                data_value=f"{value:.2f}",
            )
        )
    lines = [
        tag("polyline", points=" ".join(f"{px:.1f},{py:.1f}" for px, py in seg), class_="line")
        for seg in segments
        if len(seg) > 1
    ]
    described = ", ".join(
        f"{label}: {'no answers' if v is None else f'{v:.1f}'}" for label, v in zip(labels, values, strict=True)
    )
    return tag(
        "svg",
        tag("title", title, id=f"{chart_id}-title"),
        tag("desc", described, id=f"{chart_id}-desc"),
        join(grid),
        join(ticks),
        join(lines),
        join(dots),
        viewBox=f"0 0 {width} {height}",
        role="img",
        aria_labelledby=f"{chart_id}-title {chart_id}-desc",
        class_="chart",
        id=chart_id,
        preserveAspectRatio="xMidYMid meet",
    )


def sparkline(values: Sequence[float], *, label: str, width: int = 96, height: int = 24) -> Markup:
    """A tiny progress trend (0–100% and beyond); an em dash when there is nothing to draw."""
    if not values:
        return esc("–")
    # Scaled to its own range, so a slow climb still shows its direction; the title states the numbers.
    top, bottom = max(values), min(values)
    if top - bottom < 0.1:
        top, bottom = top + 0.05, bottom - 0.05
    span = top - bottom
    pad = 3
    count = len(values)
    points = []
    for i, v in enumerate(values):
        px = pad + (width - 2 * pad) * (i / (count - 1) if count > 1 else 0.5)
        py = pad + (height - 2 * pad) * (1 - (v - bottom) / span)
        points.append((px, py))
    shape = (
        tag("polyline", points=" ".join(f"{px:.1f},{py:.1f}" for px, py in points), class_="spark")
        if count > 1
        else Markup("")
    )
    end = tag("circle", cx=f"{points[-1][0]:.1f}", cy=f"{points[-1][1]:.1f}", r=2.5, class_="spark-end")
    described = " → ".join(f"{v:.0%}" for v in values)
    return tag(
        "svg",
        tag("title", f"{label}: {described}"),
        shape,
        end,
        viewBox=f"0 0 {width} {height}",
        width=width,
        height=height,
        role="img",
        class_="sparkline",
    )
