"""Scoring a file of rows: CSV in, the same CSV out with PD, score, band, decision and reasons appended.

Shared by ``manage.py score_file`` and the back-office bulk jobs, so both give the
same answer as ``scoring.assessment.assess`` would for the same features: one batch
``pred_contribs`` call per chunk (exact TreeSHAP, like ``engine.explain_one``),
then ``factors_from``, the score scale and ``policy_apply`` row by row.

Input columns named like the model's features are its inputs; an empty cell (or
NA, N/A, NaN, null) is a missing value. ``requested_amount`` and ``naf_code``, when
present, feed the policy's knock-outs. Every other column is passed through as is.
A row whose numbers do not parse gets an ``error`` and no score; the file goes on.
Files saved by French Excel (UTF-8 with a BOM or Windows-1252, ``;`` between
cells, decimal commas) are read by ``scoring.csvfiles`` and written back with the
same delimiter and decimal comma, in UTF-8 with a BOM.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from scoring import csvfiles
from scoring.csvfiles import CsvFile, CsvInputError, is_missing_text
from scoring.model import engine
from scoring.model.features import FEATURES_BY_NAME
from scoring.models import ModelVersion, PolicyVersion
from scoring.policy.apply import policy_apply
from scoring.policy.scale import band_for, score_for

MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 50_000
CHUNK_ROWS = 1000
FACTOR_COUNT = 3

REQUESTED_AMOUNT = "requested_amount"
NAF_CODE = "naf_code"
FACTOR_COLUMNS = tuple(f"factor_{i}" for i in range(1, FACTOR_COUNT + 1))
OUTPUT_COLUMNS = (
    "probability_of_default",
    "score",
    "band",
    "decision",
    "recommended_limit",
    "rules_fired",
    *FACTOR_COLUMNS,
    "error",
)
FLAG_WORDS = {"true": 1.0, "yes": 1.0, "oui": 1.0, "vrai": 1.0, "false": 0.0, "no": 0.0, "non": 0.0, "faux": 0.0}


def csv_read(data: bytes, *, max_rows: int | None = None) -> CsvFile:
    """The file through the shared reader, with the rows it found ragged marked as errors, not scored."""
    csv_file = csvfiles.csv_read(data, max_rows=max_rows, reserved_columns=OUTPUT_COLUMNS)
    for index, problem in csv_file.ragged.items():
        csv_file.rows[index]["error"] = problem
    return csv_file


def columns_check(csv_file: CsvFile, feature_names: list[str]) -> None:
    """A file with no model feature in its header is a file without a header, or for another model."""
    if not any(name in feature_names for name in csv_file.columns):
        raise CsvInputError(
            "The header names none of the model's features. The first line must name the columns, "
            f"among: {', '.join(feature_names)}."
        )
    if not csv_file.rows:
        raise CsvInputError("The file has a header but no rows to score.")


# --- scoring ---------------------------------------------------------------------------


class _RowError(ValueError):
    pass


def _number(column: str, text: str, *, decimal_comma: bool, flag: bool = False) -> float | None:
    cleaned = text.strip().replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    if is_missing_text(cleaned):
        return None
    if flag and cleaned.lower() in FLAG_WORDS:
        return FLAG_WORDS[cleaned.lower()]
    if decimal_comma and "," in cleaned and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    try:
        value = float(cleaned)
    except ValueError:
        raise _RowError(f"{column}: “{text.strip()}” is not a number") from None
    if not math.isfinite(value):
        raise _RowError(f"{column}: “{text.strip()}” is not a finite number")
    return value


def _row_inputs(
    row: dict[str, Any], loaded: engine.LoadedModel, *, decimal_comma: bool
) -> tuple[dict[str, Any], float, str]:
    """Features, requested amount and NAF code of a row; every unreadable cell named in one error."""
    features: dict[str, Any] = {}
    problems: list[str] = []
    for name in loaded.feature_names:
        raw = row.get(name)
        if raw is None or (isinstance(raw, str) and is_missing_text(raw)):
            features[name] = None
        elif name in loaded.categories:
            features[name] = str(raw).strip()
        elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
            features[name] = float(raw)
        else:
            flag = name in FEATURES_BY_NAME and FEATURES_BY_NAME[name].unit == "flag"
            try:
                features[name] = _number(name, str(raw), decimal_comma=decimal_comma, flag=flag)
            except _RowError as exc:
                problems.append(str(exc))
    amount = 0.0  # no amount, no cap to exceed
    raw_amount = row.get(REQUESTED_AMOUNT)
    if raw_amount is not None and str(raw_amount).strip():
        try:
            amount = _number(REQUESTED_AMOUNT, str(raw_amount), decimal_comma=decimal_comma) or 0.0
        except _RowError as exc:
            problems.append(str(exc))
        else:
            if amount < 0:
                problems.append(f"{REQUESTED_AMOUNT}: an amount cannot be negative")
    if problems:
        raise _RowError("; ".join(problems))
    return features, amount, str(row.get(NAF_CODE) or "").strip().upper()


def score_rows(
    rows: list[dict[str, Any]], model_version: ModelVersion, policy: PolicyVersion, *, decimal_comma: bool = False
) -> list[dict[str, Any]]:
    """Each row with the output columns appended: a score, or an ``error`` and empty score columns."""
    loaded = engine.model_load(model_version)
    results: list[dict[str, Any]] = []
    scorable: list[tuple[dict[str, Any], dict[str, Any], float, str]] = []
    for row in rows:
        result = {**row, **dict.fromkeys(OUTPUT_COLUMNS, "")}
        results.append(result)
        if row.get("error"):  # the reader already found the row unreadable
            result["error"] = row["error"]
            continue
        try:
            features, amount, naf_code = _row_inputs(row, loaded, decimal_comma=decimal_comma)
        except _RowError as exc:
            result["error"] = str(exc)
            continue
        scorable.append((result, features, amount, naf_code))
    if not scorable:
        return results

    explanations = engine.explain_many(loaded, [item[1] for item in scorable])
    for (result, features, amount, naf_code), explanation in zip(scorable, explanations, strict=True):
        pd = explanation.probability_of_default
        decision = policy_apply(policy, pd=pd, features=features, requested_amount=amount, naf_code=naf_code)
        factors = engine.factors_from(explanation, features, top=FACTOR_COUNT)
        result.update(
            {
                "probability_of_default": pd,
                "score": score_for(pd, model_version.segment),
                "band": band_for(pd),
                "decision": decision.decision,
                "recommended_limit": decision.recommended_limit if decision.recommended_limit is not None else "",
                "rules_fired": "|".join(decision.rules_fired),
            }
        )
        for column, factor in zip(FACTOR_COLUMNS, factors, strict=False):
            direction = FACTOR_PREFIX.get(factor["direction"], "lowers risk")
            result[column] = f"{direction}: {factor['text']['en']}"
    return results


FACTOR_PREFIX = {"increases_risk": "raises risk", "decreases_risk": "lowers risk", "missing": "missing data"}


def score_csv(
    csv_file: CsvFile,
    model_version: ModelVersion,
    policy: PolicyVersion,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Every row of the file scored, CHUNK_ROWS at a time; ``on_progress`` hears the rows done so far."""
    results: list[dict[str, Any]] = []
    for start in range(0, len(csv_file.rows), CHUNK_ROWS):
        chunk = csv_file.rows[start : start + CHUNK_ROWS]
        results.extend(score_rows(chunk, model_version, policy, decimal_comma=csv_file.decimal_comma))
        if on_progress is not None:
            on_progress(len(results))
    return results


# --- writing ---------------------------------------------------------------------------


def _cell(value: Any, *, decimal_comma: bool) -> str:
    if isinstance(value, float):
        text = f"{value:.10f}"
    elif isinstance(value, Decimal):
        text = f"{value:.2f}"
    else:
        return "" if value is None else str(value)
    return text.replace(".", ",") if decimal_comma else text


def csv_write(csv_file: CsvFile, results: list[dict[str, Any]]) -> bytes:
    """The scored rows in the input's own dialect: same delimiter, a BOM if it had one."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=csv_file.delimiter)
    writer.writerow([*csv_file.columns, *OUTPUT_COLUMNS])
    decimal_comma = csv_file.decimal_comma
    for result in results:
        # Input cells are passed through untouched; only the values scoring computed are formatted.
        writer.writerow(
            [
                *(result.get(column, "") for column in csv_file.columns),
                *(_cell(result.get(column), decimal_comma=decimal_comma) for column in OUTPUT_COLUMNS),
            ]
        )
    # UTF-8 always; with a BOM when the input had one or was Windows-1252, so that Excel reads accents right.
    bom = csv_file.bom or csv_file.encoding != "utf-8"
    return (codecs.BOM_UTF8 if bom else b"") + out.getvalue().encode("utf-8")


def results_summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows, scored, errors and the count of each decision: for the command's output and the audit row."""
    decisions: dict[str, int] = {}
    errors = 0
    for result in results:
        if result.get("error"):
            errors += 1
        else:
            decisions[result["decision"]] = decisions.get(result["decision"], 0) + 1
    return {
        "rows": len(results),
        "scored": len(results) - errors,
        "errors": errors,
        "decisions": dict(sorted(decisions.items())),
    }
