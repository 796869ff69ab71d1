""" "Did you mean": the known names closest to a name the caller got wrong."""

from __future__ import annotations

from collections.abc import Iterable

MAX_SUGGESTIONS = 3
MAX_LISTED = 20


def closest(name: str, candidates: Iterable[str]) -> list[str]:
    """Up to 3 of ``candidates`` closest to ``name`` (case-insensitively), best first."""
    import difflib  # only on this error path

    by_folded: dict[str, str] = {}
    for candidate in candidates:
        by_folded.setdefault(candidate.casefold(), candidate)
    matches = difflib.get_close_matches(name.casefold(), list(by_folded), n=MAX_SUGGESTIONS, cutoff=0.6)
    return [by_folded[match] for match in matches]


def unknown_column(name: str, candidates: Iterable[str], where: str = "") -> tuple[str, dict[str, object]]:
    """The message and details of an unknown column: the closest names, else the known ones."""
    known = list(dict.fromkeys(candidates))
    suggestions = closest(name, known)
    message = f"Unknown column '{name}'{where}."
    if suggestions:
        message += " Did you mean " + " or ".join(f"'{s}'" for s in suggestions) + "?"
    elif known:
        listed = ", ".join(f"'{k}'" for k in known[:MAX_LISTED])
        message += f" Columns: {listed}" + (", ..." if len(known) > MAX_LISTED else "") + "."
    return message, {"column": name, "did_you_mean": suggestions}
