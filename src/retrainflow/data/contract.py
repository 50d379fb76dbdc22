"""The data contract: what every window the pull stage reads must honour.

The Great Expectations suite (:mod:`retrainflow.validation`) checks the *values*
of a window against the config. Some damage cannot be seen there any more once
the partitions are concatenated: a column present in some days only comes out
NaN-filled, a day written twice looks like twice as much data, a timestamp in
the wrong partition or time zone is just a timestamp. This module checks the
window file by file (:meth:`~retrainflow.data.sources.Source.read_parts`),
before concatenation, and names the partition (day and file) of each problem.

Rules, in the order they are checked on each read ([design.md, "Data contract"]):

* a ``date=...`` partition whose name is not a valid date:
  :class:`~retrainflow.exceptions.InvalidPartitionError` (raised by the source's
  ``partitions()``);
* time zones (``time_zone``): unset, the time column must hold naive
  timestamps; set, zone-aware ones, converted to that zone and made naive.
  Anything else is :class:`~retrainflow.exceptions.TimeZoneError` — times are
  never shifted silently;
* every timestamp lies inside its partition's day (and so before the window's
  end): :class:`~retrainflow.exceptions.TimestampOutsidePartitionError`;
* the partitions of a window agree on the columns the pipeline reads (time
  column, target, features, ``expectations.columns``) and their kinds (number,
  str, bool, datetime): else :class:`~retrainflow.exceptions.PartitionSchemaError`.
  Differences in other columns are a warning;
* no duplicated rows (``expectations.duplicates``): ``refuse`` (default) raises
  :class:`~retrainflow.exceptions.DuplicateRowsError`; ``drop`` keeps one copy
  (warning and count); ``allow`` keeps identical rows, but a day written twice
  (a second identical file, or a partition whose every row has a copy) is
  still refused;
* rows whose target is null (``expectations.unlabelled``): ``refuse`` (default)
  leaves them to the validate stage, which fails; ``exclude`` drops them from
  the window, with the count in the report (monitoring reads the lake itself
  and still sees them);
* the training rows of a binary task hold both classes:
  :class:`~retrainflow.exceptions.SingleClassError`
  (:meth:`ContractReader.check_training_labels`).

Warnings (the run goes on; they are listed in the pull report and the
validate stage's warnings): entries of the lake that are neither partitions,
their Parquet files nor ``_``/``.``-prefixed (reserved for tools), partitions
that hold 0 rows, duplicates dropped, unlabelled rows excluded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np

from retrainflow.data.sources import Part, fingerprint, naive_in_zone, partition_name
from retrainflow.exceptions import (
    DuplicateRowsError,
    PartitionSchemaError,
    SingleClassError,
    TimestampOutsidePartitionError,
    TimeZoneError,
)

if TYPE_CHECKING:
    import pandas as pd

    from retrainflow.config import PipelineConfig
    from retrainflow.data.sources import Source

log = logging.getLogger(__name__)

#: Files named in a message before "and N more".
_SHOWN = 3
#: Example values quoted in a message.
_EXAMPLES = 3


@dataclass
class Findings:
    """What the contract saw on the reads of one run (the ``contract`` of the pull report)."""

    duplicates: str
    unlabelled: str
    time_zone: str | None
    #: One entry per read: dataset, window, partitions, files, rows kept.
    reads: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Dataset -> rows dropped as copies (``duplicates: drop``) / kept (``allow``).
    duplicates_dropped: dict[str, int] = field(default_factory=dict)
    duplicates_allowed: dict[str, int] = field(default_factory=dict)
    #: Dataset -> rows with a null target: excluded (``exclude``) or found (``refuse``).
    unlabelled_excluded: dict[str, int] = field(default_factory=dict)
    unlabelled_found: dict[str, int] = field(default_factory=dict)
    unknown_entries: list[str] = field(default_factory=list)
    empty_partitions: list[str] = field(default_factory=list)
    #: Zones of the zone-aware files converted to ``time_zone``.
    converted_from: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
            log.warning("data contract: %s", message)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rules": {
                "duplicates": self.duplicates,
                "unlabelled": self.unlabelled,
                "time_zone": self.time_zone,
            },
            "reads": self.reads,
            "warnings": self.warnings,
            "duplicates_dropped": self.duplicates_dropped,
            "duplicates_allowed": self.duplicates_allowed,
            "unlabelled_excluded": self.unlabelled_excluded,
            "unlabelled_found": self.unlabelled_found,
            "unknown_entries": self.unknown_entries,
            "empty_partitions": self.empty_partitions,
            "converted_from": self.converted_from,
        }


class ContractReader:
    """Reads windows of a source for the pull stage, enforcing the data contract.

    ``read_window`` answers like :meth:`Source.read_window` (so the replay sampler
    can take either); the findings of every read accumulate in :attr:`findings`.
    """

    def __init__(self, source: Source, config: PipelineConfig) -> None:
        self.source = source
        self.config = config
        exp = config.expectations
        self.findings = Findings(exp.duplicates, exp.unlabelled, config.time_zone)
        self._layout_checked = False

    def report(self) -> dict[str, Any]:
        """The findings so far, JSON-ready."""
        return self.findings.to_dict()

    # -- reading ------------------------------------------------------------------------------

    def read_window(self, start: date, end: date, dataset: str = "rows") -> pd.DataFrame:
        """The rows of ``[start, end)`` that honour the contract.

        Args:
            start: First day.
            end: Exclusive end.
            dataset: What the rows are for (``holdout``, ``training``...), for messages
                and counts.

        Returns:
            The concatenated rows; copies dropped (``duplicates: drop``), unlabelled rows
            excluded (``unlabelled: exclude``), times naive. An empty frame without rows.

        Raises:
            InvalidPartitionError, TimeZoneError, TimestampOutsidePartitionError,
            PartitionSchemaError, DuplicateRowsError: see the module's rules.
            CorruptDataError: a file cannot be read.
        """
        import pandas as pd

        where = (
            f"the {dataset} window [{start}, {end}) of '{self.config.name}' in {self.source.uri}"
        )
        days = [d for d in self.source.partitions() if start <= d < end]
        self._check_layout()
        parts = self.source.read_parts(days) if days else []
        parts = [self._naive_times(p) for p in parts]
        self._check_times(parts, start, end, dataset)
        self._note_empty(days, parts)
        parts = [p for p in parts if len(p.frame)]
        self._check_schema(parts, where)
        parts = self._without_copied_files(parts, dataset)
        if not parts:
            self._record(dataset, start, end, days, parts, 0)
            return pd.DataFrame()
        frame = pd.concat([p.frame for p in parts], ignore_index=True)
        frame = self._without_duplicates(frame, parts, dataset, where)
        frame = self._labelled(frame, parts, dataset)
        self._record(dataset, start, end, days, parts, len(frame))
        return frame

    def check_training_labels(self, train: pd.DataFrame, window: object) -> None:
        """Refuse training rows of a binary task that hold one class only.

        Raises:
            SingleClassError: naming the window, the partitions and the class.
        """
        cfg = self.config
        if cfg.task != "binary_classification" or cfg.target not in train.columns:
            return
        classes = train[cfg.target].dropna().unique()
        if len(classes) != 1:
            return
        value = classes[0].item() if hasattr(classes[0], "item") else classes[0]
        days = _days_of(train, cfg.time_column)
        span = f"{partition_name(days[0])} to {partition_name(days[-1])}" if days else "the window"
        raise SingleClassError(
            f"Every one of the {len(train)} training rows of '{cfg.name}' in {window} "
            f"(read from {span} in {self.source.uri}) has {cfg.target} = {value!r}: a "
            "classifier cannot learn from one class, and training was not started. Check the "
            "labels written into these partitions, or train on a longer window "
            "(training.window_days).",
            partition=span,
            target=cfg.target,
            value=value,
        )

    # -- the rules ----------------------------------------------------------------------------

    def _check_layout(self) -> None:
        """Warn once about entries of the store that are not partitions."""
        if self._layout_checked:
            return
        self._layout_checked = True
        unknown = self.source.unknown_entries()
        if unknown:
            self.findings.unknown_entries = unknown
            self.findings.warn(
                f"{self.source.uri} holds {len(unknown)} entr{'y' if len(unknown) == 1 else 'ies'} "
                f"that {'is' if len(unknown) == 1 else 'are'} not a date=YYYY-MM-DD partition "
                f"or its Parquet file, and {'was' if len(unknown) == 1 else 'were'} not read: "
                f"{_listed(unknown)} (prefix a name with '_' to keep tool files in the lake "
                "without this warning)"
            )

    def _naive_times(self, part: Part) -> Part:
        """``part`` with its time column naive in the pipeline's zone.

        Raises:
            TimeZoneError: zone-aware times without ``time_zone``, naive times with it,
                or both in one file.
        """
        col, zone, name = self.source.time_column, self.config.time_zone, self.config.name
        if col not in part.frame.columns:
            return part  # validation reports the missing column
        values = part.frame[col]
        kind = _time_kind(values)
        where = f"{part.label} in {self.source.uri}"
        details = {"partition": _partition(part), "file": part.uri, "column": col}
        if kind == "mixed":
            raise TimeZoneError(
                f"{where}: the time column '{col}' mixes naive and zone-aware timestamps, "
                "which cannot be placed on one clock. Rewrite the file with one kind.",
                **details,
            )
        if kind == "aware" and zone is None:
            found = _zone_of(values)
            raise TimeZoneError(
                f"{where}: the time column '{col}' holds zone-aware timestamps ({found}) but "
                f"the pipeline '{name}' is naive (no time_zone): read as they are, its rows "
                "would shift to other hours and days. Set time_zone to the IANA zone whose "
                "local days partition the data (e.g. time_zone: UTC or Europe/Paris) to "
                "convert them, or write naive local timestamps.",
                **details,
                found=found,
            )
        if kind == "naive" and zone is not None:
            raise TimeZoneError(
                f"{where}: the time column '{col}' holds naive timestamps but the pipeline "
                f"'{name}' sets time_zone '{zone}', which converts zone-aware ones: a naive "
                "time does not say which zone it is in. Write the timestamps with their zone, "
                "or remove time_zone if they already are local times.",
                **details,
                time_zone=zone,
            )
        if kind == "aware" and zone is not None:
            found = _zone_of(values)
            if found not in self.findings.converted_from:
                self.findings.converted_from.append(found)
            return Part(part.day, part.uri, naive_in_zone(part.frame, col, zone))
        return part

    def _check_times(self, parts: list[Part], start: date, end: date, dataset: str) -> None:
        """Every timestamp inside its partition's day and the window.

        Raises:
            TimestampOutsidePartitionError: naming the files, counts and examples.
        """
        import pandas as pd

        col = self.source.time_column
        bad: list[tuple[Part, int, int, list[str]]] = []
        for part in parts:
            if col not in part.frame.columns or len(part.frame) == 0:
                continue
            ts = part.frame[col]
            if not pd.api.types.is_datetime64_any_dtype(ts.dtype):
                continue  # validation reports a time column that is not a datetime
            lo = pd.Timestamp(part.day if part.day is not None else start)
            hi = lo + pd.Timedelta(days=1) if part.day is not None else pd.Timestamp(end)
            outside = ((ts < lo) | (ts >= hi)).to_numpy()
            if outside.any():
                late = int((ts[outside] >= pd.Timestamp(end)).sum())
                examples = [str(v) for v in ts[outside].drop_duplicates().head(_EXAMPLES)]
                bad.append((part, int(outside.sum()), late, examples))
        if not bad:
            return
        part, count, late, examples = bad[0]
        what = f"outside the partition's day {part.day}" if part.day else "outside the window"
        future = (
            f"; {late} of them at or after the end of the {dataset} window ({end}), i.e. in "
            "its future"
            if late
            else ""
        )
        more = f" The same holds for {_listed([b[0].label for b in bad[1:]])}." if bad[1:] else ""
        raise TimestampOutsidePartitionError(
            f"{part.label} in {self.source.uri}: {count} row{'s' if count != 1 else ''} with "
            f"{col} {what} (e.g. {examples}){future}.{more} Every row must sit in the "
            "partition of its own day: rewrite these rows into their days' partitions, or fix "
            f"the time column (the {dataset} window [{start}, {end}) of '{self.config.name}').",
            partition=_partition(part),
            file=part.uri,
            rows=sum(b[1] for b in bad),
            files=[b[0].label for b in bad],
        )

    def _note_empty(self, days: list[date], parts: list[Part]) -> None:
        rows: dict[date, int] = dict.fromkeys(days, 0)
        for part in parts:
            if part.day is not None:
                rows[part.day] = rows.get(part.day, 0) + len(part.frame)
        if any(p.day is None for p in parts):
            return  # no day partitions (SQL): a day without rows is simply not listed
        for day in days:
            if rows[day] == 0 and partition_name(day) not in self.findings.empty_partitions:
                self.findings.empty_partitions.append(partition_name(day))
                self.findings.warn(
                    f"the partition {partition_name(day)} in {self.source.uri} holds 0 rows"
                )

    def _check_schema(self, parts: list[Part], where: str) -> None:
        """The partitions agree on the columns the pipeline reads and their kinds.

        Raises:
            PartitionSchemaError: naming the columns and the files on each side.
        """
        if len(parts) < 2:
            return
        cfg = self.config
        used = set(cfg.required_columns) | set(cfg.expectations.columns)
        kinds = [{str(c): _kind(p.frame[c]) for c in p.frame.columns} for p in parts]
        columns = list(dict.fromkeys(c for k in kinds for c in k))
        labels = [p.label for p in parts]
        problems: list[str] = []
        notes: list[str] = []
        bad_columns: list[str] = []
        missing: dict[tuple[int, ...], list[str]] = {}
        for col in columns:
            lacking = tuple(i for i, k in enumerate(kinds) if col not in k)
            if lacking:
                missing.setdefault(lacking, []).append(col)
        for lacking, cols in missing.items():
            having = [labels[i] for i in range(len(parts)) if i not in lacking]
            text = (
                f"missing column(s) {cols} in {_listed([labels[i] for i in lacking])}, present "
                f"in {_listed(having)}"
            )
            cols_used = [c for c in cols if c in used]
            (problems if cols_used else notes).append(text)
            bad_columns.extend(cols_used)
        for col in columns:
            by_kind: dict[str, list[str]] = {}
            for label, k in zip(labels, kinds, strict=True):
                if k.get(col) is not None:
                    by_kind.setdefault(str(k[col]), []).append(label)
            if len(by_kind) > 1:
                sides = " but ".join(f"{kind} in {_listed(ls)}" for kind, ls in by_kind.items())
                (problems if col in used else notes).append(f"column '{col}' is {sides}")
                if col in used:
                    bad_columns.append(col)
        for note in notes:
            self.findings.warn(f"schema differs between partitions of {where}: {note}")
        if problems:
            raise PartitionSchemaError(
                f"Schema change between the partitions of {where}: {'; '.join(problems)}. "
                "Partitions of one window must agree on the columns the pipeline reads (a "
                "missing column is not filled with nulls): rewrite the partitions on one side "
                "with the other side's columns and types, or move the window past the change.",
                columns=sorted(set(bad_columns)),
                partition=parts[0].label,
            )

    def _without_copied_files(self, parts: list[Part], dataset: str) -> list[Part]:
        """``parts`` without a second identical file of one partition (``drop``).

        Raises:
            DuplicateRowsError: such a copy, unless ``duplicates: drop``.
        """
        by_day: dict[date, list[int]] = {}
        for i, part in enumerate(parts):
            if part.day is not None:
                by_day.setdefault(part.day, []).append(i)
        copies: dict[int, int] = {}  # index of a copy -> index of the file it copies
        for indexes in by_day.values():
            if len(indexes) < 2:
                continue
            seen: dict[str, int] = {}
            for i in indexes:
                key = fingerprint(parts[i].frame)
                if key in seen:
                    copies[i] = seen[key]
                else:
                    seen[key] = i
        if not copies:
            return parts
        text = "; ".join(
            f"{parts[i].label} is an identical copy of {parts[j].label} ({len(parts[i].frame)} "
            "rows)"
            for i, j in copies.items()
        )
        if self.findings.duplicates != "drop":
            first = next(iter(copies))
            raise DuplicateRowsError(
                f"In {self.source.uri}: {text}: the day was written twice. Remove the copy, or "
                f"set expectations.duplicates: drop in '{self.config.name}' to read one copy.",
                partition=_partition(parts[first]),
                file=parts[first].uri,
                files=[parts[i].label for i in copies],
            )
        dropped = sum(len(parts[i].frame) for i in copies)
        self._count(self.findings.duplicates_dropped, dataset, dropped)
        self.findings.warn(f"{text}: the copy was not read (expectations.duplicates: drop)")
        return [p for i, p in enumerate(parts) if i not in copies]

    def _without_duplicates(
        self, frame: pd.DataFrame, parts: list[Part], dataset: str, where: str
    ) -> pd.DataFrame:
        """``frame`` checked for rows that are exact copies of other rows.

        Raises:
            DuplicateRowsError: copies with ``duplicates: refuse``; a partition whose every
                row has a copy (a day written twice) with ``allow``.
        """
        policy = self.findings.duplicates
        try:
            copy = frame.duplicated(keep="first").to_numpy()
        except TypeError as exc:  # unhashable values (lists, dicts) in some column
            self.findings.warn(f"duplicates in {where} were not checked: {exc}")
            return frame
        count = int(copy.sum())
        if not count:
            return frame
        sizes = np.array([len(p.frame) for p in parts])
        owner = np.repeat(np.arange(len(parts)), sizes)
        per_part = np.bincount(owner[copy], minlength=len(parts))
        hit = [(parts[i], int(per_part[i])) for i in np.flatnonzero(per_part)]
        in_files = _listed([f"{p.label} ({n})" for p, n in hit])
        if policy == "drop":
            self._count(self.findings.duplicates_dropped, dataset, count)
            self.findings.warn(
                f"{count} row{'s' if count != 1 else ''} of {where} were copies of other rows "
                f"and were dropped (expectations.duplicates: drop): {in_files}"
            )
            return frame.loc[~copy].reset_index(drop=True)
        twice: list[Part] = []
        if policy == "allow":
            has_copy = frame.duplicated(keep=False).to_numpy()
            whole = np.bincount(owner, weights=has_copy, minlength=len(parts)) == sizes
            twice = [parts[i] for i in np.flatnonzero(whole & (sizes > 1))]
            if not twice:
                self._count(self.findings.duplicates_allowed, dataset, count)
                return frame
        first = twice[0] if twice else hit[0][0]
        index = parts.index(first)
        example = _example(frame.loc[copy & (owner == index)], self.source.time_column)
        if twice:
            problem = (
                f"every row of {_listed([p.label for p in twice])} has an identical copy: the "
                "day was written twice (expectations.duplicates: allow accepts single identical "
                "rows, not a whole day)"
            )
            fix = (
                "Rewrite the partition with one copy, or set expectations.duplicates: drop in "
                f"'{self.config.name}'."
            )
        else:
            problem = (
                f"{count} rows are exact copies of other rows"
                if count != 1
                else "1 row is an exact copy of another row"
            ) + f", in {in_files}"
            fix = (
                f"Remove the copies, or set expectations.duplicates in '{self.config.name}' to "
                "drop (keep one copy) or allow (identical rows are separate events)."
            )
        raise DuplicateRowsError(
            f"In {where}: {problem} (e.g. {example}). {fix}",
            partition=_partition(first),
            file=first.uri,
            rows=count,
        )

    def _labelled(self, frame: pd.DataFrame, parts: list[Part], dataset: str) -> pd.DataFrame:
        """``frame`` without rows whose target is null (``unlabelled: exclude``)."""
        target = self.config.target
        if target not in frame.columns:
            return frame
        unlabelled = frame[target].isna().to_numpy()
        count = int(unlabelled.sum())
        if not count:
            return frame
        if self.findings.unlabelled != "exclude":
            self._count(self.findings.unlabelled_found, dataset, count)
            return frame  # refused by validation, which names the target's nulls
        self._count(self.findings.unlabelled_excluded, dataset, count)
        self.findings.warn(
            f"{count} row{'s' if count != 1 else ''} of the {dataset} rows with no {target} yet "
            "were excluded from training and evaluation (expectations.unlabelled: exclude)"
        )
        kept = frame.loc[~unlabelled].reset_index(drop=True)
        # The nulls made an integer (or bool) target float (or object): restore the type of the
        # fully labelled files, so the schema matches the champion's.
        full = [p.frame[target].dtype for p in parts if not p.frame[target].isna().any()]
        if full and kept[target].dtype != full[0] and full[0].kind in "iub":
            values = kept[target]
            try:
                restored = values.astype(full[0])
            except (TypeError, ValueError):
                return kept
            if (restored == values).all():
                kept[target] = restored
        return kept

    # -- bookkeeping --------------------------------------------------------------------------

    @staticmethod
    def _count(counts: dict[str, int], dataset: str, n: int) -> None:
        counts[dataset] = counts.get(dataset, 0) + n

    def _record(
        self, dataset: str, start: date, end: date, days: list[date], parts: list[Part], rows: int
    ) -> None:
        self.findings.reads.append(
            {
                "dataset": dataset,
                "window": f"[{start}, {end})",
                "partitions": len(days),
                "files": len(parts),
                "rows": rows,
            }
        )


# -- helpers -----------------------------------------------------------------------------------


def _partition(part: Part) -> str:
    return partition_name(part.day) if part.day is not None else part.uri


def _listed(items: list[str]) -> str:
    """``a, b, c``, or ``a, ..., z (N in all)`` for longer lists."""
    if len(items) <= _SHOWN:
        return ", ".join(items)
    return f"{items[0]}, ..., {items[-1]} ({len(items)} in all)"


def _example(rows: pd.DataFrame, time_column: str) -> str:
    """A short description of the first of ``rows``: its time, or the whole row."""
    if rows.empty:
        return "none"
    first = rows.iloc[0]
    if time_column in rows.columns:
        return f"the row of {time_column} {first[time_column]}"
    return str(first.to_dict())


def _days_of(frame: pd.DataFrame, column: str) -> list[date]:
    import pandas as pd

    if column not in frame.columns or not pd.api.types.is_datetime64_any_dtype(frame[column]):
        return []
    ts = frame[column].dropna()
    if ts.empty:
        return []
    return [ts.min().date(), ts.max().date()]


def _time_kind(values: pd.Series) -> str:
    """``naive``, ``aware``, ``mixed`` (both in one column) or ``other`` (not timestamps)."""
    import pandas as pd

    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return "aware"
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return "naive"
    if not pd.api.types.is_object_dtype(values.dtype):
        return "other"
    if pd.api.types.infer_dtype(values, skipna=True) not in ("datetime", "mixed"):
        return "other"  # e.g. strings: validation reports the type
    stamps = [v for v in values.dropna() if hasattr(v, "tzinfo")]
    if not stamps:
        return "other"
    aware = {getattr(v, "tzinfo", None) is not None for v in stamps}
    if aware == {True, False}:
        return "mixed"
    return "aware" if True in aware else "naive"


def _zone_of(values: pd.Series) -> str:
    """The zone of zone-aware timestamps, e.g. ``UTC`` or ``America/New_York``."""
    tz = getattr(values.dtype, "tz", None)
    if tz is None:
        first = values.dropna().iloc[0] if values.notna().any() else None
        tz = getattr(first, "tzinfo", None)
    return str(tz)


def _kind(values: pd.Series) -> str | None:
    """What a column holds, for comparing partitions: ``number``, ``str``, ``bool``,
    ``datetime`` (``datetime[<zone>]``), another pandas type name, or None when every
    value is null (a null column fits any kind)."""
    import pandas as pd

    dtype = values.dtype
    if pd.api.types.is_object_dtype(dtype):
        inferred = pd.api.types.infer_dtype(values, skipna=True)  # "empty": only nulls
        return None if inferred == "empty" else _OBJECT_KINDS.get(inferred, inferred)
    if not values.notna().any():
        return None
    if isinstance(dtype, pd.CategoricalDtype):
        return _kind(pd.Series(dtype.categories))
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return f"datetime[{dtype.tz}]"
    if pd.api.types.is_datetime64_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.StringDtype):
        return "str"
    return str(dtype)


#: ``pandas.api.types.infer_dtype`` of an object column -> its kind (others: as inferred).
_OBJECT_KINDS = {
    "string": "str",
    "boolean": "bool",
    "integer": "number",
    "floating": "number",
    "mixed-integer-float": "number",
    "decimal": "number",
    "datetime": "datetime",
    "datetime64": "datetime",
}


__all__ = ["ContractReader", "Findings"]
