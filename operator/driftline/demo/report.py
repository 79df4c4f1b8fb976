"""The demo's report: drift score over time with the version served, the service's decisions and the versions'
fate, as one self-contained HTML page with an inline SVG chart (opens in any browser, no JavaScript). Pure."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 960, 320
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 40
PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948"]


@dataclass(frozen=True)
class Sample:
    """One look at the InferenceService's status.drift, `t` seconds into the demo."""

    t: float
    score: float | None
    threshold: float
    version: int | None
    assessment: str


@dataclass(frozen=True)
class Mark:
    """A decision on the timeline (status.history), `t` seconds into the demo."""

    t: float
    label: str


def _x(t: float, t_max: float) -> float:
    return LEFT + (WIDTH - LEFT - RIGHT) * (t / t_max if t_max > 0 else 0.0)


def _y(v: float, v_max: float) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - min(v, v_max) / v_max)


def chart(samples: Sequence[Sample], marks: Sequence[Mark]) -> str:
    """The SVG: a band per served version, the score line, the threshold, and a rule per decision."""
    t_max = max([s.t for s in samples] + [m.t for m in marks] + [1.0])
    scores = [s.score for s in samples if s.score is not None]
    threshold = samples[-1].threshold if samples else 0.0
    v_max = max([*scores, threshold * 2, 0.1]) * 1.1
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" '
        f'font-size="11" role="img" aria-label="drift score over time">'
    ]
    # Bands: which version served when.
    start: Sample | None = None
    for s in [*samples, None]:
        if start is not None and (s is None or s.version != start.version):
            end = s.t if s is not None else t_max
            if start.version is not None:
                colour = PALETTE[(start.version - 1) % len(PALETTE)]
                x0, x1 = _x(start.t, t_max), _x(end, t_max)
                out.append(
                    f'<rect x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 0.5):.1f}" height="{HEIGHT - TOP - BOTTOM}" '
                    f'fill="{colour}" fill-opacity="0.12"/>'
                )
                out.append(f'<text x="{x0 + 3:.1f}" y="{HEIGHT - BOTTOM - 4}" fill="{colour}">v{start.version}</text>')
        if s is not None and (start is None or s.version != start.version):
            start = s
    # Axes and threshold.
    out.append(f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" stroke="#333"/>')
    out.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#333"/>')
    for frac in (0.0, 0.5, 1.0):
        v = v_max * frac
        out.append(f'<text x="{LEFT - 6}" y="{_y(v, v_max) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
        t = t_max * frac
        out.append(f'<text x="{_x(t, t_max):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{t:.0f}s</text>')
    if threshold:
        y = _y(threshold, v_max)
        dashed = 'stroke="#e15759" stroke-dasharray="6 4"'
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" {dashed}/>')
        out.append(f'<text x="{WIDTH - RIGHT - 4}" y="{y - 4:.1f}" text-anchor="end" fill="#e15759">threshold</text>')
    # Decisions.
    for i, m in enumerate(marks):
        x = _x(m.t, t_max)
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{HEIGHT - BOTTOM}" stroke="#555"/>')
        out.append(f'<text x="{x + 3:.1f}" y="{TOP + 12 + 13 * (i % 3)}">{html.escape(m.label)}</text>')
    # The score, broken where there was none (e.g. a new version's window filling).
    run: list[str] = []
    for s in [*samples, None]:
        if s is not None and s.score is not None:
            run.append(f"{_x(s.t, t_max):.1f},{_y(s.score, v_max):.1f}")
            continue
        if run:
            out.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="#222" stroke-width="1.5"/>')
            run = []
    out.append(
        f'<text x="{LEFT}" y="{HEIGHT - 6}">seconds into the demo; line: drift score (max over features); '
        f"bands: version served</text>"
    )
    out.append("</svg>")
    return "\n".join(out)


def _table(rows: Sequence[Sequence[str]]) -> str:
    head, *body = rows
    cells = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    lines = ["<table>", f"<tr>{cells}</tr>"]
    lines += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body]
    return "\n".join([*lines, "</table>"])


def page(
    title: str,
    samples: Sequence[Sample],
    marks: Sequence[Mark],
    versions: Sequence[Sequence[str]],
    history: Sequence[Sequence[str]],
) -> str:
    """`versions` and `history` are tables whose first row is the header."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; font-size: 13px; }}
th {{ background: #f3f3f3; }}
</style></head>
<body>
<h1>{html.escape(title)}</h1>
<h2>Drift of the served version</h2>
{chart(samples, marks)}
<h2>Decisions (InferenceService status.history)</h2>
{_table(history)}
<h2>Versions</h2>
{_table(versions)}
</body></html>
"""
