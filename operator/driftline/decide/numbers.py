"""Numbers in messages: short, but never so short that a breach reads "0.25 above threshold 0.25"."""

from __future__ import annotations

MAX_DIGITS = 17
"""Enough significant digits to write any float exactly."""


def _short(x: float, digits: int) -> str:
    """`x` exactly, with the fewest significant digits (at least `digits`) that write it: a threshold as typed."""
    return next((t for d in range(digits, MAX_DIGITS + 1) if float(t := f"{x:.{d}g}") == x), repr(x))


def apart(value: float, bound: float, digits: int = 4) -> tuple[str, str]:
    """`value` and `bound` as text: the bound as written, the value with the fewest significant digits (at least
    `digits`) that keep it on its side of the bound, so the two never read alike unless they are equal."""
    shown_bound = _short(bound, digits)
    if value == bound:
        return shown_bound, shown_bound
    for d in range(digits, MAX_DIGITS + 1):
        text = f"{value:.{d}g}"
        if float(text) != bound and (float(text) > bound) == (value > bound) and text != shown_bound:
            return text, shown_bound
    return repr(value), shown_bound
