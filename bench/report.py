"""Figures, their targets and the table ``make bench`` prints (pure logic, unit-tested)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

PASS = "PASS"
MISS = "MISS"
INFO = "info"


@dataclass(frozen=True)
class Figure:
    """One measured figure. ``ok`` is None for figures shown for contrast only (no target)."""

    name: str
    value: str
    target: str
    ok: bool | None
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.ok is None:
            return INFO
        return PASS if self.ok else MISS


def at_most(name: str, value: float, bound: float, *, unit: str = "", note: str = "") -> Figure:
    return Figure(name, _number(value, unit), f"≤ {_number(bound, unit)}", value <= bound, note)


def at_least(name: str, value: float, bound: float, *, unit: str = "", note: str = "") -> Figure:
    return Figure(name, _number(value, unit), f"≥ {_number(bound, unit)}", value >= bound, note)


def info(name: str, value: str, note: str = "") -> Figure:
    return Figure(name, value, "—", None, note)


def missed(name: str, target: str, reason: str) -> Figure:
    """A figure that could not be measured counts as missed, with the reason as its note."""
    return Figure(name, "n/a", target, False, reason)


def guarded(name: str, target: str, measure: Callable[[], list[Figure]]) -> list[Figure]:
    """``measure()``, or one missed figure naming the error: one broken figure must not hide the rest."""
    try:
        return measure()
    except Exception as exc:  # noqa: BLE001 - reported as a MISS with its reason, never swallowed
        return [missed(name, target, f"{type(exc).__name__}: {exc}")]


def _number(value: float, unit: str) -> str:
    if isinstance(value, int) or float(value).is_integer():
        text = f"{int(value):,}"
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".rstrip()


def table(figures: Iterable[Figure]) -> str:
    """A markdown table (pasteable into the README)."""
    rows = [("figure", "measured", "target", "result", "notes")]
    rows += [(f.name, f.value, f.target, f.verdict, f.note) for f in figures]
    lines = ["| " + " | ".join(_cell(text) for text in row) + " |" for row in rows]
    lines.insert(1, "| " + " | ".join("---" for _ in rows[0]) + " |")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def line(figure: Figure) -> str:
    """One progress line, printed as soon as a figure is measured."""
    note = f"  ({figure.note})" if figure.note else ""
    return f"  [{figure.verdict:>4}] {figure.name}: {figure.value}  target {figure.target}{note}"


def exit_code(figures: Iterable[Figure]) -> int:
    """0 when every figure with a target meets it, else 1."""
    return 1 if any(figure.ok is False for figure in figures) else 0
