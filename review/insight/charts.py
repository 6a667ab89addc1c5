"""Charts drawn on the server as SVG: no script and nothing from another origin, so they work
under the CSP `default-src 'self'`. Every label is escaped; each chart has a title for screen
readers, and the same figures are in the table under it."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from django.utils.safestring import SafeString, mark_safe

WIDTH = 640
BAR = 22
LABEL_W = 220
COLOURS = ("#2f7d4f", "#b8452f", "#3a6ea5", "#c08a1e", "#6b4fa0", "#4d8c8c", "#8c4d6b", "#707070")


def _svg(height: int, title: str, body: list[str]) -> SafeString:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {WIDTH} {height}"'
        f' width="{WIDTH}" height="{height}"><title>{escape(title)}</title>'
    )
    return mark_safe(head + "".join(body) + "</svg>")  # every value above is escaped


def rate_bars(title: str, rows: Sequence[tuple[str, float | None, float | None, float | None, int]]) -> SafeString:
    """Horizontal bars of rates 0..1 (label, rate, wilson low, wilson high, decided) with the
    interval drawn as a whisker."""
    plot = WIDTH - LABEL_W - 70
    height = 20 + BAR * max(1, len(rows))
    body = [f'<line x1="{LABEL_W}" y1="4" x2="{LABEL_W}" y2="{height - 4}" stroke="#999"/>']
    for i, (label, rate, low, high, decided) in enumerate(rows):
        y = 10 + i * BAR
        body.append(
            f'<text x="{LABEL_W - 6}" y="{y + 14}" text-anchor="end" font-size="12">{escape(str(label)[:34])}</text>'
        )
        if rate is None:
            body.append(f'<text x="{LABEL_W + 6}" y="{y + 14}" font-size="12" fill="#777">no decisions</text>')
            continue
        body.append(
            f'<rect x="{LABEL_W}" y="{y + 3}" width="{rate * plot:.1f}" height="{BAR - 8}" fill="{COLOURS[0]}"/>'
        )
        if low is not None and high is not None:
            x1, x2, mid = LABEL_W + low * plot, LABEL_W + high * plot, y + BAR / 2 - 1
            body.append(f'<line x1="{x1:.1f}" y1="{mid}" x2="{x2:.1f}" y2="{mid}" stroke="#222" stroke-width="1.5"/>')
            body.append(f'<line x1="{x1:.1f}" y1="{mid - 5}" x2="{x1:.1f}" y2="{mid + 5}" stroke="#222"/>')
            body.append(f'<line x1="{x2:.1f}" y1="{mid - 5}" x2="{x2:.1f}" y2="{mid + 5}" stroke="#222"/>')
        body.append(f'<text x="{LABEL_W + plot + 6}" y="{y + 14}" font-size="12">{rate * 100:.0f}% of {decided}</text>')
    return _svg(height, title, body)


def value_bars(title: str, rows: Sequence[tuple[str, float]], *, unit: str = "") -> SafeString:
    """Horizontal bars of non-negative values (label, value)."""
    plot = WIDTH - LABEL_W - 90
    top = max((v for _, v in rows), default=0) or 1
    height = 20 + BAR * max(1, len(rows))
    body = []
    for i, (label, value) in enumerate(rows):
        y = 10 + i * BAR
        body.append(
            f'<text x="{LABEL_W - 6}" y="{y + 14}" text-anchor="end" font-size="12">{escape(str(label)[:34])}</text>'
        )
        body.append(
            f'<rect x="{LABEL_W}" y="{y + 3}" width="{value / top * plot:.1f}" height="{BAR - 8}" fill="{COLOURS[2]}"/>'
        )
        body.append(
            f'<text x="{LABEL_W + value / top * plot + 6:.1f}" y="{y + 14}" font-size="12">'
            f"{value:,.4g}{escape(unit)}</text>"
        )
    if not rows:
        body.append('<text x="10" y="24" font-size="12" fill="#777">nothing in this range</text>')
    return _svg(height, title, body)


def stacked_columns(title: str, days: Sequence[str], series: Sequence[tuple[str, Sequence[float]]]) -> SafeString:
    """Columns per day, one colour per series stacked (series: name, a value per day), with a legend."""
    height, left, bottom, top_pad = 220, 40, 170, 10
    totals = [sum(values[i] for _, values in series) for i in range(len(days))]
    top = max(totals, default=0) or 1
    step = (WIDTH - left - 10) / max(1, len(days))
    body = [f'<line x1="{left}" y1="{bottom}" x2="{WIDTH - 10}" y2="{bottom}" stroke="#999"/>']
    body.append(f'<text x="{left - 4}" y="{top_pad + 10}" text-anchor="end" font-size="11">{top:,.4g}</text>')
    for i, day in enumerate(days):
        x, y = left + i * step, float(bottom)
        for k, (_, values) in enumerate(series):
            h = values[i] / top * (bottom - top_pad)
            if h > 0:
                y -= h
                body.append(
                    f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(1.0, step - 2):.1f}" height="{h:.1f}"'
                    f' fill="{COLOURS[k % len(COLOURS)]}"/>'
                )
        if len(days) <= 16 or i % max(1, len(days) // 8) == 0:
            body.append(
                f'<text x="{x + step / 2:.1f}" y="{bottom + 14}" text-anchor="middle" font-size="10">'
                f"{escape(str(day)[5:])}</text>"
            )
    for k, (name, _) in enumerate(series):
        x = left + (k % 4) * 150
        y = bottom + 32 + (k // 4) * 14
        body.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{COLOURS[k % len(COLOURS)]}"/>')
        body.append(f'<text x="{x + 14}" y="{y}" font-size="11">{escape(str(name)[:22])}</text>')
    if not days:
        body.append('<text x="50" y="90" font-size="12" fill="#777">nothing in this range</text>')
    return _svg(height + 14 * (len(series) // 4), title, body)
