"""Training a PD model from a CSV of historical labelled files, so a team can bootstrap from its own book.

``manage.py train_model --csv FILE --target COLUMN`` reads the file with the shared reader,
checks it (types, missing rates, leakage), and trains on every other column:
numeric columns as numbers, text columns as native XGBoost categories. Columns
named like a catalogue feature get that feature's monotone constraint. A book of
up to 20,000 files is cross-validated (``training.train_matrix``): with
``--date-column`` the folds are time-ordered, as for training on dossiers;
without one they are stratified, since a file's row order is rarely a reliable
time order. A larger book validates on its latest 20 % of files, by date or, with
no date, by file order.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring.csvfiles import CsvInputError, csv_frame, csv_read
from scoring.model.features import Feature, catalogue_for
from scoring.model.training import (
    CROSS_VALIDATION_MAX_ROWS,
    MIN_PER_CLASS,
    MIN_ROWS,
    TrainedModel,
    monotone_constraints_for,
    train_matrix,
)

DEFAULT_POSITIVE = ("1", "true", "yes", "defaulted")
# Column names that usually describe what happened after the decision: the outcome itself, or its consequences.
LEAKY_NAME_PARTS = (
    "default",
    "defaut",
    "défaut",
    "outcome",
    "target",
    "label",
    "arrears",
    "delinquen",
    "write_off",
    "writeoff",
    "write-off",
    "charge_off",
    "chargeoff",
    "recover",
    "impaye",
    "impayé",
    "contentieux",
    "collection",
)
LEAKY_CORRELATION = 0.95
LEAKAGE = "leakage: "
IDENTIFIER_MIN_ROWS = 50
LEAKAGE_MIN_PER_CLASS = 5
_DECIMAL_COMMA = re.compile(r"[-+]?\d+(,\d+)?([eE][-+]?\d+)?")


class CsvTrainingError(ValueError):
    """The CSV cannot be trained on; the message says why and what to do."""


@dataclass
class ColumnSummary:
    name: str
    dtype: str
    kind: str  # numeric | categorical
    missing_rate: float
    n_unique: int
    role: str  # target | date | feature | excluded | dropped
    note: str = ""


@dataclass
class CsvReport:
    """The data-validation report: what was read, what was used, and what looks wrong."""

    path: Path
    target: str
    rows_read: int = 0
    rows_missing_target: int = 0
    rows_missing_date: int = 0
    rows_used: int = 0
    defaults: int = 0
    positive_values: list[str] = field(default_factory=list)
    negative_values: list[str] = field(default_factory=list)
    order: str = ""
    columns: list[ColumnSummary] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def leakage(self) -> list[str]:
        """The warnings that found leakage in the data itself (not just a suspicious column name)."""
        return [w for w in self.warnings if w.startswith(LEAKAGE)]

    def lines(self) -> list[str]:
        rate = self.defaults / self.rows_used if self.rows_used else 0.0
        out = [
            f"Data validation: {self.path.name}: {self.rows_read} rows read, "
            f"{self.rows_missing_target} without a target dropped"
            + (f", {self.rows_missing_date} without a usable date dropped" if self.rows_missing_date else "")
            + f", {self.rows_used} used; {self.defaults} defaults ({rate:.2%}): "
            f"{self.target} = {' / '.join(self.positive_values)} (non-default: {' / '.join(self.negative_values)}).",
            f"Time order: {self.order}.",
            "",
            f"{'column':32}{'dtype':>10}  {'kind':12}{'missing':>9}{'unique':>8}  role",
        ]
        for c in self.columns:
            role = c.role + (f" ({c.note})" if c.note else "")
            out.append(f"{c.name[:31]:32}{c.dtype[:10]:>10}  {c.kind:12}{c.missing_rate:>9.1%}{c.n_unique:>8}  {role}")
        if self.warnings:
            out += ["", "Warnings:"] + [f"  - {w}" for w in self.warnings]
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": "csv",
            "file": self.path.name,
            "target": self.target,
            "positive_values": self.positive_values,
            "rows_read": self.rows_read,
            "rows_missing_target": self.rows_missing_target,
            "rows_missing_date": self.rows_missing_date,
            "rows_used": self.rows_used,
            "defaults": self.defaults,
            "order": self.order,
            "warnings": self.warnings,
        }


@dataclass
class CsvTraining:
    trained: TrainedModel
    report: CsvReport


def train_from_csv(
    path: str | Path,
    *,
    target: str,
    positive: str | None = None,
    date_column: str | None = None,
    exclude: list[str] | None = None,
    segment: str = "b2b",
    folds: int | None = None,
) -> CsvTraining:
    """Read, check and train (``folds`` as for ``training.train_matrix``).

    Raises ``CsvTrainingError`` with a message meant for the person who ran it.
    """
    path = Path(path)
    frame = read_csv(path)
    report = CsvReport(path=path, target=target, rows_read=len(frame))
    exclude = list(exclude or [])
    for name, flag in [(target, "--target"), (date_column, "--date-column")] + [(e, "--exclude") for e in exclude]:
        if name is not None and name not in frame.columns:
            raise CsvTrainingError(
                f"{flag} column {name!r} is not in {path.name}; its columns are: " + ", ".join(map(str, frame.columns))
            )
    if date_column == target:
        raise CsvTrainingError("--date-column and --target name the same column")

    frame, y, window = _labelled_in_time_order(frame, report, positive=positive, date_column=date_column)

    catalogue = _catalogue(segment)
    features, categorical, columns = _features(
        frame, y, report, skip={target, date_column, *exclude}, excluded=set(exclude), catalogue=catalogue
    )
    report.columns = columns
    if not features:
        raise CsvTrainingError(
            f"{path.name} has no usable feature column besides the target" + (" and the date" if date_column else "")
        )
    known = {f.name for f in catalogue}
    unknown = [name for name in features if name not in known]
    if unknown:
        report.warnings.append(
            f"{len(unknown)} of {len(features)} feature columns are not in the {segment} feature catalogue "
            f"({', '.join(unknown[:8])}{', …' if len(unknown) > 8 else ''}): they get no monotone constraint, and "
            "the live scoring path does not compute them, so they will be missing when new dossiers are scored."
        )

    categories = {name: sorted({str(v) for v in frame[name].dropna()}) for name in features if name in categorical}
    matrix = encode_frame(frame, features, categories)
    directions = {f.name: f.direction for f in catalogue if not f.categorical}
    try:
        trained = train_matrix(
            matrix,
            y,
            feature_names=features,
            categories=categories,
            monotone_constraints=monotone_constraints_for(features, categorical, directions),
            folds=folds,
            time_ordered=date_column is not None,
        )
    except ValueError as exc:
        raise CsvTrainingError(f"{path.name}: {exc}") from None
    trained.training_window = window
    trained.metrics["training_data"] = report.as_dict()
    return CsvTraining(trained=trained, report=report)


def _labelled_in_time_order(
    frame: pd.DataFrame, report: CsvReport, *, positive: str | None, date_column: str | None
) -> tuple[pd.DataFrame, np.ndarray, dict[str, str]]:
    """The rows with a label (and a date, when ordered by one), oldest first; their labels; the training window."""
    target = report.target
    y_all, report.positive_values, report.negative_values = _labels(frame[target], target, positive)
    keep = ~np.isnan(y_all)
    report.rows_missing_target = int((~keep).sum())
    order_key: np.ndarray | None = None
    is_date = False
    if date_column:
        order_key, is_date = _order_key(frame[date_column], date_column)
        has_date = ~pd.isna(order_key)
        report.rows_missing_date = int((keep & ~has_date).sum())
        keep &= has_date
    frame, y = frame[keep], y_all[keep]
    report.rows_used, report.defaults = len(y), int(y.sum())
    _check_sizes(report)

    row_numbers = np.flatnonzero(keep) + 1  # data rows of the file, 1-based
    if order_key is not None:
        keys = order_key[keep]
        order = np.argsort(keys, kind="stable")
        frame, y = frame.iloc[order], y[order]
        window = {
            "from": _stamp(keys[order[0]], is_date),
            "to": _stamp(keys[order[-1]], is_date),
            "column": str(date_column),
        }
        report.order = f"by {date_column} ({window['from']} to {window['to']})"
    else:
        window = {"from": f"row {row_numbers[0]}", "to": f"row {row_numbers[-1]}", "order": "file order"}
        report.order = (
            "file order (no --date-column): stratified folds on a book of up to "
            f"{CROSS_VALIDATION_MAX_ROWS:,} files, else the last rows validate"
        )

    return frame, y, window


def read_csv(path: Path) -> pd.DataFrame:
    """The book through the shared CSV reader (``scoring.csvfiles``), as typed columns."""
    if not path.exists():
        raise CsvTrainingError(f"CSV file not found: {path}")
    if not path.is_file():
        raise CsvTrainingError(f"not a file: {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CsvTrainingError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        csv_file = csv_read(data)
    except CsvInputError as exc:
        raise CsvTrainingError(f"cannot read {path.name} as CSV: {exc}") from None
    if csv_file.ragged:
        first = min(csv_file.ragged)
        raise CsvTrainingError(f"cannot read {path.name} as CSV: data row {first + 1}: {csv_file.ragged[first]}")
    if len(csv_file.columns) < 2:
        raise CsvTrainingError(
            f"{path.name} has {len(csv_file.columns)} column: a target and at least one feature "
            "are needed (is the separator a comma, semicolon or tab?)"
        )
    return csv_frame(csv_file)


def _label_text(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value).strip().lower()


def _labels(series: pd.Series, target: str, positive: str | None) -> tuple[np.ndarray, list[str], list[str]]:
    """1.0 / 0.0 per row, NaN where the target is missing; and the values read as default / not."""
    texts = [None if _is_blank(v) else _label_text(v) for v in series.tolist()]
    values = sorted({t for t in texts if t is not None})
    shown = ", ".join(values[:10]) + (", …" if len(values) > 10 else "")
    if not values:
        raise CsvTrainingError(f"the target column {target!r} is empty")
    if len(values) == 1:
        raise CsvTrainingError(
            f"the target column {target!r} has a single value ({shown}): it must have two, default and non-default"
        )
    if len(values) > 2:
        raise CsvTrainingError(
            f"the target column {target!r} is not binary: {len(values)} distinct values "
            f"({shown}); keep files with a final outcome only, coded with two values"
        )
    if positive is not None:
        wanted = _label_text(positive)
        if wanted not in values:
            raise CsvTrainingError(f"--positive {positive!r} is not a value of {target!r} (its values: {shown})")
        positives = {wanted}
    else:
        positives = set(values) & set(DEFAULT_POSITIVE)
        if len(positives) != 1:
            raise CsvTrainingError(
                f"cannot tell which value of {target!r} means default (its values: {shown}); pass --positive VALUE"
            )
    y = np.array([np.nan if t is None else float(t in positives) for t in texts])
    return y, sorted(positives), [v for v in values if v not in positives]


def _is_blank(value: Any) -> bool:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return True
    return isinstance(value, str) and not value.strip()


def _order_key(series: pd.Series, column: str) -> tuple[np.ndarray, bool]:
    """A sortable key per row (NaN/NaT where unusable), and whether it is a date."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan), False
    parsed = pd.to_datetime(series, errors="coerce", format="ISO8601")
    if parsed.notna().sum() < 0.5 * series.notna().sum():
        with warnings.catch_warnings():  # "could not infer format": each value is then parsed on its own
            warnings.simplefilter("ignore", UserWarning)
            parsed = pd.to_datetime(series, errors="coerce", dayfirst=True)  # 31/12/2024, as French files write
    if parsed.notna().sum() < 0.5 * series.notna().sum():
        sample = ", ".join(map(str, series.dropna().head(3)))
        raise CsvTrainingError(
            f"--date-column {column!r} does not hold dates (e.g. {sample}); use ISO dates such as 2024-03-31"
        )
    return parsed.to_numpy(), True


def _stamp(value: Any, is_date: bool) -> str:
    if is_date:
        return pd.Timestamp(value).isoformat()
    return f"{value:g}" if isinstance(value, float) else str(value)


def _check_sizes(report: CsvReport) -> None:
    n, positives = report.rows_used, report.defaults
    dropped = f" (after dropping {report.rows_missing_target} without a target)" if report.rows_missing_target else ""
    if n < MIN_ROWS:
        raise CsvTrainingError(
            f"{report.path.name}: {n} labelled rows{dropped}; at least {MIN_ROWS} are needed to train and validate"
        )
    if positives < MIN_PER_CLASS or n - positives < MIN_PER_CLASS:
        raise CsvTrainingError(
            f"{report.path.name}: {positives} defaults and {n - positives} non-defaults{dropped}; at least "
            f"{MIN_PER_CLASS} of each are needed (is --positive right? defaults are "
            f"{report.target} = {' / '.join(report.positive_values)})"
        )


def _catalogue(segment: str) -> tuple[Feature, ...]:
    try:
        return catalogue_for(segment)
    except ValueError:
        return ()


def _features(
    frame: pd.DataFrame,
    y: np.ndarray,
    report: CsvReport,
    *,
    skip: set[str | None],
    excluded: set[str],
    catalogue: tuple[Feature, ...],
) -> tuple[list[str], set[str], list[ColumnSummary]]:
    """The feature columns (numeric ones converted in ``frame`` where text held decimal commas), the
    categorical ones, and a summary of every column."""
    directions = {f.name: f.direction for f in catalogue if not f.categorical}
    features: list[str] = []
    categorical: set[str] = set()
    columns: list[ColumnSummary] = []
    for name in frame.columns:
        series = frame[name]
        note = ""
        if name not in skip and not pd.api.types.is_numeric_dtype(series):
            converted = _decimal_comma_numbers(series)
            if converted is not None:
                frame[name] = series = converted
                note = "decimal commas read as numbers"
        kind = "numeric" if pd.api.types.is_numeric_dtype(series) else "categorical"
        n_unique = int(series.nunique(dropna=True))
        summary = ColumnSummary(
            name=str(name),
            dtype=str(series.dtype),
            kind=kind,
            missing_rate=float(series.isna().mean()),
            n_unique=n_unique,
            role="feature",
            note=note,
        )
        columns.append(summary)
        if name == report.target:
            summary.role = "target"
            continue
        if name in skip:
            summary.role = "excluded" if name in excluded else "date"
            summary.kind = "-" if name in excluded else "date"
            continue
        if series.nunique(dropna=False) <= 1:  # a value that is sometimes missing still tells something
            summary.role = "dropped"
            summary.note = "constant" if n_unique else "always missing"
            report.warnings.append(f"{name!r} is {summary.note}: dropped")
            continue
        non_missing = int(series.notna().sum())
        if kind == "categorical" and n_unique == non_missing and non_missing >= IDENTIFIER_MIN_ROWS:
            summary.role = "dropped"
            summary.note = "identifier"
            report.warnings.append(f"{name!r} has a different value on every row, like an identifier: dropped")
            continue
        features.append(str(name))
        if kind == "categorical":
            categorical.add(str(name))
            if _looks_like_dates(series):
                report.warnings.append(
                    f"{name!r} holds dates: as a feature it learns the calendar, not the risk; "
                    "pass it as --date-column or leave it out with --exclude"
                )
        elif directions.get(name):
            summary.note = ", ".join(
                filter(
                    None,
                    [summary.note, "monotone, risk " + ("rises" if directions[name] > 0 else "falls") + " with it"],
                )
            )
        report.warnings.extend(leakage_warnings(str(name), series, y))
    return features, categorical, columns


def _looks_like_dates(series: pd.Series) -> bool:
    values = series.dropna().astype(str).head(200)
    if values.empty:
        return False
    parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
    return bool(parsed.notna().mean() >= 0.9)


def _decimal_comma_numbers(series: pd.Series) -> pd.Series | None:
    """A text column of numbers written with decimal commas (``12,5``), as numbers; else None."""
    values = series.dropna().astype(str).str.strip()
    if values.empty or not values.str.contains(",", regex=False).any():
        return None
    if not values.map(lambda v: bool(_DECIMAL_COMMA.fullmatch(v))).all():
        return None
    return pd.to_numeric(series.astype(str).str.strip().str.replace(",", ".", regex=False), errors="coerce")


def leakage_warnings(name: str, series: pd.Series, y: np.ndarray) -> list[str]:
    """Reasons to suspect the column knows the outcome: it would not be known when the decision is made."""
    found: list[str] = []
    lowered = name.lower()
    hint = next((part for part in LEAKY_NAME_PARTS if part in lowered), None)
    if hint:
        found.append(
            f"possible leakage: the name {name!r} suggests the outcome ({hint!r}); keep only what is "
            "known when the credit decision is made"
        )
    missing = series.isna().to_numpy()
    positive = y == 1
    if missing.any() and (np.array_equal(missing, positive) or np.array_equal(missing, ~positive)):
        found.append(
            f"{LEAKAGE}{name!r} is filled in exactly for the "
            f"{'non-defaulted' if np.array_equal(missing, positive) else 'defaulted'} files"
        )
    present = ~missing
    yp = y[present]
    if min(int(yp.sum()), int(len(yp) - yp.sum())) < LEAKAGE_MIN_PER_CLASS:
        return found  # too few of one class among the filled rows to tell
    if pd.api.types.is_numeric_dtype(series):
        x = series.to_numpy(dtype=np.float64, na_value=np.nan)[present]
        if np.array_equal(x, yp) or np.array_equal(x, 1 - yp):
            found.append(f"{LEAKAGE}{name!r} is identical to the target")
        elif x[yp == 1].max() < x[yp == 0].min() or x[yp == 0].max() < x[yp == 1].min():
            found.append(
                f"{LEAKAGE}{name!r} separates defaults from non-defaults perfectly (a threshold on it "
                "predicts every outcome)"
            )
        elif np.std(x) > 0:
            corr = float(np.corrcoef(x, yp)[0, 1])
            if abs(corr) > LEAKY_CORRELATION:
                found.append(f"{LEAKAGE}{name!r} is correlated with the target at {corr:+.3f}")
    else:
        groups = pd.DataFrame({"value": series[present].astype(str).to_numpy(), "y": yp}).groupby("value")["y"]
        pure = bool((groups.nunique() == 1).all())
        if pure and groups.ngroups <= max(2, len(yp) // 10):
            what = "is the target under other names" if groups.ngroups == 2 else "determines the target"
            found.append(f"{LEAKAGE}{name!r} {what}: each of its values goes with a single outcome")
    return found


def encode_frame(frame: pd.DataFrame, features: list[str], categories: dict[str, list[str]]) -> np.ndarray:
    """The columns as ``engine.encode_rows`` encodes feature dicts: floats, NaN for missing, category codes."""
    matrix = np.full((len(frame), len(features)), np.nan, dtype=np.float64)
    for j, name in enumerate(features):
        series = frame[name]
        if name in categories:
            as_text = series.map(lambda v: None if _is_blank(v) else str(v))
            codes = pd.Categorical(as_text, categories=categories[name]).codes.astype(np.float64)
            codes[codes < 0] = np.nan
            matrix[:, j] = codes
        else:
            matrix[:, j] = series.to_numpy(dtype=np.float64, na_value=np.nan)
    return matrix
