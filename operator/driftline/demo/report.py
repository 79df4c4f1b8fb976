"""The demo's report: drift score over time (log scale, with the top features) and the version served, the service's
decisions and the versions' fate, as one self-contained HTML page with an inline SVG chart (opens in any browser, no
JavaScript). Pure."""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

WIDTH, PLOT_HEIGHT = 960, 300
LEFT, RIGHT, BOTTOM = 56, 16, 56
LABEL_ROW, CHAR_WIDTH = 14, 6.4
"""A decision label's row height, and the width a character of it is given (11 px sans-serif, generously)."""
PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948"]
FEATURE_COLOURS = ["#9c755f", "#ff9da7", "#bab0ac"]
TOP_FEATURES = 3


@dataclass(frozen=True)
class Sample:
    """One look at the InferenceService's status.drift, `t` seconds into the demo."""

    t: float
    score: float | None
    threshold: float
    version: int | None
    assessment: str
    features: tuple[tuple[str, float], ...] = ()
    """The most drifted features at this reading (status.drift.features), name and value."""


@dataclass(frozen=True)
class Mark:
    """A decision on the timeline (status.history), `t` seconds into the demo."""

    t: float
    label: str


@dataclass(frozen=True)
class _Axes:
    t_max: float
    v_min: float
    v_max: float
    top: float
    """Where the plot starts: below the rows of decision labels."""

    def x(self, t: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (t / self.t_max if self.t_max > 0 else 0.0)

    def y(self, v: float) -> float:
        """Log scale: a threshold of 0.25 and a breach of 8 are both readable, and healthy readings stay apart."""
        v = min(max(v, self.v_min), self.v_max)
        span = math.log10(self.v_max) - math.log10(self.v_min)
        return self.top + PLOT_HEIGHT * (1 - (math.log10(v) - math.log10(self.v_min)) / span)


def label_boxes(marks: Sequence[Mark], x: Callable[[float], float]) -> list[tuple[int, float, float]]:
    """Where each mark's label goes (in the order given): (row, left, right). Right of its rule, or left of it where
    it would run off the chart; in the first row where it starts after the last label there ends, so no two labels
    overlap however close their decisions were."""
    ends: list[float] = []
    out: list[tuple[int, float, float]] = [(0, 0.0, 0.0)] * len(marks)
    for i in sorted(range(len(marks)), key=lambda i: marks[i].t):
        width = CHAR_WIDTH * len(marks[i].label)
        left = x(marks[i].t) + 3
        if left + width > WIDTH - RIGHT:
            left = x(marks[i].t) - 3 - width
        row = next((r for r, end in enumerate(ends) if left > end + 4), len(ends))
        if row == len(ends):
            ends.append(0.0)
        ends[row] = left + width
        out[i] = (row, left, left + width)
    return out


def _ticks(v_min: float, v_max: float) -> list[float]:
    """Decades within the axis (0.01, 0.1, 1, 10, ...), and 3x each where the axis spans few decades."""
    out = []
    for e in range(math.floor(math.log10(v_min)), math.ceil(math.log10(v_max)) + 1):
        for m in (1, 3) if math.log10(v_max / v_min) < 3 else (1,):
            v = m * 10.0**e
            if v_min <= v <= v_max:
                out.append(v)
    return out


def _fmt(v: float) -> str:
    return f"{v:g}"


def chart(samples: Sequence[Sample], marks: Sequence[Mark], started: dt.datetime | None = None) -> str:
    """The SVG: a band per served version, the score line and the top features' lines on a log axis, the threshold,
    and a rule per decision with its label in a row of its own where labels would meet. `started`: the wall clock
    at t=0, shown under the seconds."""
    t_max = max([s.t for s in samples] + [m.t for m in marks] + [1.0])
    scores = [s.score for s in samples if s.score is not None and s.score > 0]
    feature_values = [v for s in samples for _, v in s.features if v > 0]
    threshold = samples[-1].threshold if samples else 0.0
    highest = max([*scores, *feature_values, threshold * 2, 0.1])
    lowest = min([*scores, *feature_values, threshold / 4 if threshold else 0.01, 0.01])
    v_min = 10.0 ** math.floor(math.log10(lowest))
    v_max = 10.0 ** math.ceil(math.log10(highest * 1.2))
    boxes = label_boxes(marks, _Axes(t_max, v_min, v_max, 0.0).x)
    rows = [row for row, _, _ in boxes]
    ax = _Axes(t_max, v_min, v_max, 8 + LABEL_ROW * (max(rows) + 1 if rows else 0) + 8)
    height = ax.top + PLOT_HEIGHT + BOTTOM
    bottom = ax.top + PLOT_HEIGHT
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" font-family="sans-serif" '
        f'font-size="11" role="img" aria-label="drift score over time">'
    ]
    # Bands: which version served when.
    start: Sample | None = None
    for s in [*samples, None]:
        if start is not None and (s is None or s.version != start.version):
            end = s.t if s is not None else t_max
            if start.version is not None:
                colour = PALETTE[(start.version - 1) % len(PALETTE)]
                x0, x1 = ax.x(start.t), ax.x(end)
                out.append(
                    f'<rect x="{x0:.1f}" y="{ax.top:.1f}" width="{max(x1 - x0, 0.5):.1f}" height="{PLOT_HEIGHT}" '
                    f'fill="{colour}" fill-opacity="0.12"/>'
                )
                out.append(f'<text x="{x0 + 3:.1f}" y="{bottom - 4:.1f}" fill="{colour}">v{start.version}</text>')
        if s is not None and (start is None or s.version != start.version):
            start = s
    # Axes: log-scaled drift, seconds (and the wall clock) along the bottom.
    out.append(f'<line x1="{LEFT}" y1="{bottom:.1f}" x2="{WIDTH - RIGHT}" y2="{bottom:.1f}" stroke="#333"/>')
    out.append(f'<line x1="{LEFT}" y1="{ax.top:.1f}" x2="{LEFT}" y2="{bottom:.1f}" stroke="#333"/>')
    for v in _ticks(v_min, v_max):
        y = ax.y(v)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(v)}</text>')
    for frac, anchor in ((0.0, "start"), (0.25, "middle"), (0.5, "middle"), (0.75, "middle"), (1.0, "end")):
        t, x = t_max * frac, ax.x(t_max * frac)
        out.append(f'<text x="{x:.1f}" y="{bottom + 15:.1f}" text-anchor="{anchor}">{t:.0f}s</text>')
        if started is not None:
            clock = (started + dt.timedelta(seconds=t)).astimezone(dt.UTC).strftime("%H:%M:%S")
            out.append(f'<text x="{x:.1f}" y="{bottom + 28:.1f}" text-anchor="{anchor}" fill="#777">{clock}</text>')
    if threshold:
        y = ax.y(threshold)
        dashed = 'stroke="#e15759" stroke-dasharray="6 4"'
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" {dashed}/>')
        out.append(
            f'<text x="{WIDTH - RIGHT - 4}" y="{y - 4:.1f}" text-anchor="end" fill="#e15759">'
            f"threshold {_fmt(threshold)}</text>"
        )
    # Decisions: a rule down the plot, the label above it in its row.
    for m, (row, left, _) in zip(marks, boxes, strict=True):
        x = ax.x(m.t)
        y = 8 + LABEL_ROW * row + 11
        out.append(f'<line x1="{x:.1f}" y1="{y - 11:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="#555"/>')
        out.append(f'<text x="{left:.1f}" y="{y:.1f}">{html.escape(m.label)}</text>')
    # The top features over the run, then the score on top, each broken where there was no value.
    peaks: dict[str, float] = {}
    for s in samples:
        for name, v in s.features:
            peaks[name] = max(peaks.get(name, 0.0), v)
    top = sorted(peaks, key=lambda n: -peaks[n])[:TOP_FEATURES]
    for name, colour in zip(top, FEATURE_COLOURS, strict=False):
        values = [(s.t, dict(s.features).get(name)) for s in samples]
        out += _polylines(ax, values, f'stroke="{colour}" stroke-width="1"', f"feature {name}")
    out += _polylines(ax, [(s.t, s.score) for s in samples], 'stroke="#222" stroke-width="1.5"', "drift score")
    legend = "; ".join(f"{n} ({c})" for n, c in zip(top, ("brown", "pink", "grey"), strict=False))
    out.append(
        f'<text x="{LEFT}" y="{height - 6:.0f}">seconds into the demo (UTC below); black: drift score (max over '
        f"features, log scale){'; features: ' + html.escape(legend) if legend else ''}; bands: version served</text>"
    )
    out.append("</svg>")
    return "\n".join(out)


def _polylines(ax: _Axes, values: Sequence[tuple[float, float | None]], style: str, title: str) -> list[str]:
    out, run = [], []
    for t, v in [*values, (0.0, None)]:
        if v is not None and v > 0 and math.isfinite(v):
            run.append(f"{ax.x(t):.1f},{ax.y(v):.1f}")
            continue
        if run:
            out.append(
                f'<polyline points="{" ".join(run)}" fill="none" {style}><title>{html.escape(title)}</title></polyline>'
            )
            run = []
    return out


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
    started: dt.datetime | None = None,
) -> str:
    """`versions` and `history` are tables whose first row is the header; `started`: the wall clock at t=0."""
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
{chart(samples, marks, started)}
<h2>Decisions (InferenceService status.history)</h2>
{_table(history)}
<h2>Versions</h2>
{_table(versions)}
</body></html>
"""
