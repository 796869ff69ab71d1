"""Validation of a dropped file: which dataset column each file column fills, with what type, and
each chunk converted with its bad rows (SPEC §7).

- Types: a file column that is already a dataset column keeps the dataset's type. A new column
  takes the type the ``types`` option gives it, else Parquet's own type, else the type the
  whole file's values vote for (``mapping.TextTypes`` / ``JsonTypes``, by majority), so a few
  odd values are bad rows, never a silent widening to string. The vote is a pass over the
  file (``Detection``) before any row is converted.
- A bad row is reported as ``{row, column, message}``; ``row`` is the 0-based data row of the
  file (the same base as the rows API's errors, which name the position in the request's
  ``rows``; a CSV's header and blank lines are not rows).
"""

from __future__ import annotations

from typing import Any

from ..columns import ColumnType, normal_name
from ..config import settings
from ..models import column_name_problem
from ..records import Dataset
from . import convert
from .mapping import JsonTypes, Kind, TextTypes, fits, natural_type
from .readers import Chunk, FileProblem, Reader

Target = dict[str, Any]  # {source, name, type, attr (None: a new column), detected?: {seen, fit}}


class Detection:
    """Type votes of a file's new columns, gathered chunk by chunk (resumable through ``state``).

    JSON Lines files are always read once this way: the column names are the keys of the lines.
    """

    def __init__(self, style: str, state: dict[str, Any] | None = None) -> None:
        state = state or {}
        self.style = style
        self.names: list[str] = list(state.get("names", []))
        kind = TextTypes if style == "text" else JsonTypes
        self.votes: dict[str, TextTypes | JsonTypes] = {
            name: kind(vote) for name, vote in (state.get("votes") or {}).items()
        }

    def add(self, chunk: Chunk, settled: set[str]) -> None:
        """Count the chunk's values of every column whose type is not settled otherwise."""
        for name, cells in chunk.columns.items():
            if name not in self.votes and name not in self.names:
                self.names.append(name)
            if name in settled:
                continue
            vote = self.votes.get(name)
            if vote is None:
                vote = self.votes[name] = TextTypes() if self.style == "text" else JsonTypes()
            add = vote.add
            for cell in cells:
                add(cell)

    def result(self, name: str) -> tuple[ColumnType | None, dict[str, int] | None]:
        """The type the column's values voted for (None: no value at all) and the vote's count."""
        vote = self.votes.get(name)
        if vote is None:
            return None, None
        kind = vote.result()
        if kind is None:
            return None, None
        if isinstance(vote, TextTypes):
            fit = vote.fits.get(kind, vote.seen) if kind is not ColumnType.STRING else vote.seen
        else:
            fit = _json_fit(vote, kind)
        return kind, {"seen": vote.seen, "fit": fit}

    def state(self) -> dict[str, Any]:
        return {"names": self.names, "votes": {name: vote.state() for name, vote in self.votes.items()}}


def _json_fit(vote: JsonTypes, kind: ColumnType) -> int:
    if kind is ColumnType.DATE:
        return vote.dates
    if kind is ColumnType.DATETIME:
        return vote.datetimes
    return vote.counts.get(kind, 0)


def needs_detection(reader: Reader, dataset: Dataset | None, types: dict[str, str]) -> bool:
    """Whether the file must be read once to vote on types (or, for JSON Lines, to find its columns)."""
    if reader.style == "arrow":
        return False
    if reader.style == "json":
        return True
    known = {column.name for column in dataset.columns} if dataset is not None else set()
    return any(name not in known and name not in types for name in reader.header)  # type: ignore[union-attr]


def settled_columns(dataset: Dataset | None, types: dict[str, str]) -> set[str]:
    known = {column.name for column in dataset.columns} if dataset is not None else set()
    return known | set(types)


def targets(
    reader: Reader,
    dataset: Dataset | None,
    upsert_on: str | None,
    types: dict[str, str],
    detection: Detection | None,
) -> list[Target]:
    """Each file column's dataset column: ``{source, name, type, attr (None: new)}``.

    ``dataset`` is None for a dataset the import will create. ``FileProblem`` when the file
    cannot go into the dataset at all (a type clash, a reserved name, too many columns, ...).
    """
    known = {column.name: column for column in dataset.columns} if dataset is not None else {}
    kinds: dict[str, Kind] = {}
    if reader.style == "arrow":
        kinds = dict(reader.kinds)  # type: ignore[union-attr]
        names = list(kinds)
    elif reader.style == "text":
        names = list(reader.header)  # type: ignore[union-attr]
    else:
        names = list(detection.names) if detection is not None else []
    # Names as the rows API stores them (NFC, one spelling per look); ``source`` is the file's.
    types = {normal_name(name): value for name, value in types.items()}
    unknown = sorted(set(types) - {normal_name(source) for source in names})
    if unknown:
        raise FileProblem(
            f"types names column '{unknown[0]}', which the file does not have", column=unknown[0]
        )
    found: list[Target] = []
    spelled: dict[str, str] = {}  # column name (NFC) → the file's name for it
    for source in names:
        name = normal_name(source)
        problem = column_name_problem(name)
        if problem:
            raise FileProblem(f"column '{name}' cannot be imported: {problem}", column=name)
        if name in spelled:
            raise FileProblem(f"the file names column '{name}' twice (in two Unicode spellings)", column=name)
        spelled[name] = source
        override = ColumnType(types[name]) if name in types else None
        if name in known:
            column = known[name]
            if override is not None and override is not column.type:
                raise FileProblem(
                    f"types sets column '{name}' to {override.value}, but the dataset's '{name}' column "
                    f"is {column.type.value}; a column's type cannot change",
                    column=name,
                )
            if source in kinds and not fits(kinds[source], column.type):
                raise FileProblem(
                    f"column '{name}' holds {kinds[source].value} values, but the dataset's "
                    f"'{name}' column is {column.type.value}",
                    column=name,
                )
            found.append({"source": source, "name": name, "type": column.type.value, "attr": column.attr})
            continue
        if override is not None:
            if source in kinds and not (fits(kinds[source], override) or override is ColumnType.STRING):
                raise FileProblem(
                    f"types sets column '{name}' to {override.value}, but the file holds "
                    f"{kinds[source].value} values there",
                    column=name,
                )
            found.append({"source": source, "name": name, "type": override.value, "attr": None})
            continue
        if source in kinds:
            natural = natural_type(kinds[source])
            if natural is not None:  # a column with no value anywhere: no column yet
                found.append({"source": source, "name": name, "type": natural.value, "attr": None})
            continue
        detected, vote = detection.result(source) if detection is not None else (None, None)
        if detected is not None:
            target: Target = {"source": source, "name": name, "type": detected.value, "attr": None}
            if vote is not None:
                target["detected"] = vote
            found.append(target)
    if upsert_on is not None:
        if dataset is None or upsert_on not in dataset.ready_indexes:
            raise FileProblem(
                f"upsert-on must name a dataset column with a ready index; '{upsert_on}' is not one",
                column=upsert_on,
            )
        if upsert_on not in spelled:
            raise FileProblem(f"the file has no '{upsert_on}' column to upsert on", column=upsert_on)
    total = len(known) + sum(1 for target in found if target["attr"] is None)
    if total > settings().max_columns:
        raise FileProblem(
            f"the dataset would have {total} columns; at most {settings().max_columns} are allowed"
        )
    return found


def convert_chunk(chunk: Chunk, found: list[Target], style: str, upsert_on: str | None) -> convert.Converted:
    """A chunk's stored values per target and its bad rows (the first problem of each)."""
    converted = convert.Converted(chunk.size, range(chunk.first_row, chunk.first_row + chunk.size), [])
    converted.flag(None, list(chunk.problems.items()))
    for target in found:
        column_type = ColumnType(target["type"])
        cells = chunk.column(target["source"])
        if style == "arrow":
            stored, problems = convert.arrow_column(cells, column_type)
        elif style == "text":
            stored, problems = convert.text_column(cells, column_type)
        else:
            stored, problems = convert.json_column(cells, column_type)
        converted.columns.append(stored)
        converted.flag(target["name"], [(p, f"{m} ({column_type.value} column)") for p, m in problems])
        if target["name"] == upsert_on:
            missing = [(p, "the upsert column has no value") for p, v in enumerate(stored) if v is None]
            converted.flag(upsert_on, missing)
    converted.flag(None, convert.oversized(converted.columns, chunk.size))
    return converted


def error(message: str, column: str | None = None, row: int | None = None) -> dict[str, Any]:
    return {"row": row, "column": column, "message": message}


def typing_hints(found: list[Target], bad_by_column: dict[str, int]) -> list[str]:
    """Why a column's odd values are bad: it was typed by the majority of its values."""
    hints = []
    for target in found:
        vote = target.get("detected")
        bad = bad_by_column.get(target["name"], 0)
        if vote and bad and vote["fit"] < vote["seen"]:
            hints.append(
                f"column '{target['name']}' is {target['type']} because {vote['fit']} of its "
                f"{vote['seen']} values are; the other {vote['seen'] - vote['fit']} are bad rows "
                f"(to keep them, import it as text: types={target['name']}:string)"
            )
    return hints


class ImportFailed(Exception):
    """The import ends as failed: ``reason`` says why in a sentence, ``errors`` are the report's
    ``[{row, column, message}]`` (at most ``MAX_ERRORS``)."""

    def __init__(
        self,
        errors: list[dict[str, Any]],
        rejected: int = 0,
        rows_total: int | None = None,
        reason: str | None = None,
    ) -> None:
        self.reason = reason or (errors[0]["message"] if errors else "the import failed")
        super().__init__(self.reason)
        self.errors = errors
        self.rejected = rejected
        self.rows_total = rows_total


MAX_ERRORS = 100
