"""Outcomes from a CSV file: each row through the outcome services, in its own transaction, reported line by line.

The file is read by ``scoring.csvfiles`` (UTF-8 with or without a BOM, else Windows-1252;
``,``, ``;`` or tab between cells), as bulk scoring reads its files. Columns may be named in
English or in French; statuses, dates and amounts may be written the French way ("passé en
perte", 31/01/2025, "1 234,56"). A row whose dossier already has an outcome and that gives a
reason is a correction (``outcome_correct``); any other row records an outcome
(``outcome_record``), exactly as the dossier page and the partner API do. A bad row is
reported and never blocks the others; a file that cannot be read at all records nothing.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
import uuid
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import PurePath
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import DatabaseError, transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from riskoffice.audit import Actor, audit_record
from riskoffice.roles import AUDITOR, CAN_DECIDE, SENIOR_ANALYST, has_any_role
from scoring.csvfiles import CsvFile, CsvInputError, csv_read

from . import selectors
from .models import Dossier, Outcome, OutcomeImport
from .outcomes import OUTCOME_AMOUNTS, OutcomeAlreadyRecorded, outcome_correct, outcome_record

logger = logging.getLogger(__name__)

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 10_000
# Dossiers looked up per query: a file of 10,000 rows costs ten.
LOOKUP_CHUNK = 1000

RECORDED, CORRECTED, REJECTED = "recorded", "corrected", "rejected"
FIELDS = ("dossier", "status", "date", *OUTCOME_AMOUNTS, "reason")
REQUIRED = ("dossier", "status", "date")


def _key(text: str) -> str:
    """A header or a status as compared: lower case, no accents, words separated by one space."""
    text = unicodedata.normalize("NFKD", text.strip().casefold())
    text = "".join(char for char in text if not unicodedata.combining(char))
    return " ".join(re.split(r"[^a-z0-9]+", text)).strip()


# Header names each column is known by, compared through _key: English, the API's names, French.
COLUMN_NAMES = {
    "dossier": ("dossier", "dossier id", "id", "identifiant", "identifiant dossier", "identifiant du dossier"),
    "status": ("status", "outcome", "statut", "issue", "resultat"),
    "date": ("date", "occurred on", "outcome date", "date de l issue", "date issue"),
    "granted_amount": ("granted amount", "granted", "amount granted", "montant accorde", "accorde"),
    "outstanding_amount": (
        "outstanding amount",
        "outstanding",
        "amount outstanding",
        "encours",
        "restant du",
        "montant restant du",
        "capital restant du",
    ),
    "written_off_amount": (
        "written off amount",
        "written off",
        "amount written off",
        "montant passe en perte",
        "passe en perte",
        "perte",
    ),
    "reason": ("reason", "correction reason", "motif", "raison", "motif de correction", "justification"),
}
STATUS_WORDS = {
    "repaid": Outcome.Status.REPAID,
    "rembourse": Outcome.Status.REPAID,
    "defaulted": Outcome.Status.DEFAULTED,
    "default": Outcome.Status.DEFAULTED,
    "defaut": Outcome.Status.DEFAULTED,
    "en defaut": Outcome.Status.DEFAULTED,
    "written off": Outcome.Status.WRITTEN_OFF,
    "passe en perte": Outcome.Status.WRITTEN_OFF,
    "perte": Outcome.Status.WRITTEN_OFF,
}
ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
FRENCH_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
AMOUNT = re.compile(r"^-?\d+(\.\d+)?$")
SPACES = re.compile(r"[\s\u00a0\u202f]+")
MAX_INTEGER_DIGITS = 12  # the model's amounts: 14 digits, 2 after the point


class _CellError(ValueError):
    pass


# --- reads ---------------------------------------------------------------------------------------


def outcome_imports_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[OutcomeImport]:
    """The imports a user may see: their own for analysts; every import for senior analysts and auditors."""
    imports = OutcomeImport.objects.select_related("uploaded_by")
    if has_any_role(user, {SENIOR_ANALYST, AUDITOR}):
        return imports
    if has_any_role(user, CAN_DECIDE):
        return imports.filter(uploaded_by=user)
    return imports.none()


# --- the import ----------------------------------------------------------------------------------


def outcome_import_run(*, user: AbstractBaseUser, filename: str, data: bytes) -> OutcomeImport:
    """Record (or correct) the outcomes of a CSV file, row by row, and store the report.

    Raises ValidationError on the ``file`` when the file cannot be read at all (too big, too many
    rows, empty, not text, a header without the required columns): then nothing is recorded.
    Not one transaction: each row is one, so that a bad row never undoes the good ones.
    """
    if len(data) > MAX_BYTES:
        raise ValidationError({"file": _size_error(len(data))})
    try:
        csv_file = csv_read(data, max_rows=MAX_ROWS)
        columns = _columns(csv_file.columns)
    except CsvInputError as exc:
        raise ValidationError({"file": str(exc)}) from None
    if not csv_file.rows:
        raise ValidationError({"file": _("The file has a header but no rows.")})

    actor = Actor(user=user)
    visible = _visible_dossiers(user, [row.get(columns["dossier"], "") for row in csv_file.rows])
    report = [
        _row_import(row, line=line, problem=csv_file.ragged.get(index), columns=columns, visible=visible, actor=actor)
        for index, (row, line) in enumerate(zip(csv_file.rows, csv_file.lines, strict=True))
    ]
    return _import_store(user=user, filename=filename, csv_file=csv_file, report=report)


def _size_error(size: int) -> str:
    return _("The file is %(size)s MB; the limit is %(limit)s MB. Split it into smaller files.") % {
        "size": f"{size / 2**20:.1f}",
        "limit": MAX_BYTES // 2**20,
    }


def _columns(header: list[str]) -> dict[str, str]:
    """Each field's column in the file, by any of its names; the required ones must be there, once."""
    known = {_key(name): field for field, names in COLUMN_NAMES.items() for name in names}
    columns: dict[str, str] = {}
    for name in header:
        field = known.get(_key(name))
        if field is None:
            continue  # other columns (a company name, a note) are left alone
        if field in columns:
            raise CsvInputError(
                _("The columns “%(first)s” and “%(second)s” both name the %(field)s: keep one.")
                % {"first": columns[field], "second": name, "field": field_label(field)}
            )
        columns[field] = name
    missing = [field for field in REQUIRED if field not in columns]
    if missing:
        raise CsvInputError(
            _(
                "The first line must name the columns dossier, status and date (in English or in French); "
                "missing: %(missing)s. Columns found: %(found)s."
            )
            % {
                "missing": ", ".join(str(field_label(field)) for field in missing),
                "found": ", ".join(header) or "—",
            }
        )
    return columns


def field_label(field: str) -> str:
    return {
        "dossier": _("dossier"),
        "status": _("status"),
        "date": _("date"),
        "granted_amount": _("amount granted"),
        "outstanding_amount": _("amount outstanding"),
        "written_off_amount": _("amount written off"),
        "reason": _("reason"),
    }[field]


def _visible_dossiers(user: AbstractBaseUser, cells: list[str]) -> dict[uuid.UUID, Dossier]:
    """The file's dossiers this user may see, by id, a chunk of ids per query."""
    ids = sorted({dossier_id for cell in cells if (dossier_id := _uuid(cell)) is not None})
    scoped = selectors.dossiers_for_user(user).select_related(None).prefetch_related(None).only("pk", "partner_id")
    found: dict[uuid.UUID, Dossier] = {}
    for start in range(0, len(ids), LOOKUP_CHUNK):
        found.update((dossier.pk, dossier) for dossier in scoped.filter(pk__in=ids[start : start + LOOKUP_CHUNK]))
    return found


def _uuid(text: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID((text or "").strip())
    except ValueError:
        return None


def _row_import(
    row: dict[str, str],
    *,
    line: int,
    problem: str | None,
    columns: dict[str, str],
    visible: dict[uuid.UUID, Dossier],
    actor: Actor,
) -> dict[str, Any]:
    """One row through the services; its entry in the report."""
    cells = {field: (row.get(column) or "").strip() for field, column in columns.items()}
    entry: dict[str, Any] = {"line": line, "dossier": cells["dossier"], "result": REJECTED, "errors": {}}
    if problem:
        entry["errors"]["row"] = problem
        return entry
    try:
        dossier, values = _row_values(cells, visible)
    except ValidationError as error:
        entry["errors"] = {field: " ".join(messages) for field, messages in error.message_dict.items()}
        return entry
    reason = cells.get("reason", "")
    try:
        with transaction.atomic():
            if reason and Outcome.objects.filter(dossier_id=dossier.pk).exists():
                outcome_correct(dossier=dossier, reason=reason, actor=actor, source="import", **values)
                entry["result"] = CORRECTED
            else:
                outcome_record(dossier=dossier, actor=actor, source="import", **values)
                entry["result"] = RECORDED
    except OutcomeAlreadyRecorded as error:
        hint = _("To correct it, give the reason for the correction in a “reason” column.")
        entry["errors"] = {"row": f"{' '.join(error.messages)} {hint}"}
    except ValidationError as error:
        entry["errors"] = _service_errors(error)
    except DatabaseError:
        logger.exception("Outcome import: line %s could not be recorded", line)
        entry["errors"] = {"row": _("This row could not be recorded; nothing was changed. Try it again.")}
    return entry


def _row_values(cells: dict[str, str], visible: dict[uuid.UUID, Dossier]) -> tuple[Dossier, dict[str, Any]]:
    """The row's dossier and the services' arguments, or a ValidationError naming every unreadable cell."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"amounts": {}}
    dossier = None
    dossier_id = _uuid(cells["dossier"])
    if not cells["dossier"]:
        errors["dossier"] = _("The dossier id is missing.")
    elif dossier_id is None:
        errors["dossier"] = _("“%(value)s” is not a dossier id: give the full id shown on the dossier page.") % {
            "value": cells["dossier"]
        }
    elif dossier_id not in visible:
        errors["dossier"] = _("No dossier has this id, or you may not see it.")
    else:
        dossier = visible[dossier_id]
    parsers = {"status": _status, "date": _date}
    for field, parse in parsers.items():
        try:
            values["occurred_on" if field == "date" else field] = parse(cells[field])
        except _CellError as exc:
            errors[field] = str(exc)
    for field in OUTCOME_AMOUNTS:
        if field in cells:
            try:
                values["amounts"][field] = _amount(cells[field])
            except _CellError as exc:
                errors[field] = str(exc)
    if errors:
        raise ValidationError(errors)
    return dossier, values


def _status(text: str) -> str:
    if not text:
        raise _CellError(_("The status is missing: repaid, defaulted or written off."))
    status = STATUS_WORDS.get(_key(text))
    if status is None:
        raise _CellError(
            _(
                "“%(value)s” is not an outcome: write repaid, defaulted or written off "
                "(or remboursé, défaut, passé en perte)."
            )
            % {"value": text}
        )
    return status


def _date(text: str) -> date:
    if not text:
        raise _CellError(_("The date is missing."))
    match = ISO_DATE.match(text)
    french = FRENCH_DATE.match(text)
    try:
        if match:
            return date(int(match[1]), int(match[2]), int(match[3]))
        if french:
            return date(int(french[3]), int(french[2]), int(french[1]))
    except ValueError:
        pass
    raise _CellError(_("“%(value)s” is not a date: write it as YYYY-MM-DD or DD/MM/YYYY.") % {"value": text})


def _amount(text: str) -> Decimal | None:
    """An amount in euros, written "1234.56", "1 234,56" (spaces or non-breaking spaces), "1.234,56", or "1 234 €"."""
    cleaned = SPACES.sub("", text).removesuffix("€").removesuffix("EUR")
    if not cleaned:
        return None
    if "," in cleaned and "." in cleaned:
        thousands = "." if cleaned.rfind(",") > cleaned.rfind(".") else ","
        cleaned = cleaned.replace(thousands, "").replace(",", ".")
    elif cleaned.count(",") == 1:
        cleaned = cleaned.replace(",", ".")
    if not AMOUNT.match(cleaned):
        raise _CellError(_("“%(value)s” is not an amount in euros (e.g. 1234.56 or 1 234,56).") % {"value": text})
    try:
        value = Decimal(cleaned)
    except InvalidOperation:  # pragma: no cover - the pattern above lets only numbers through
        raise _CellError(_("“%(value)s” is not an amount in euros.") % {"value": text}) from None
    integer, _point, decimals = cleaned.lstrip("-").partition(".")
    if len(decimals) > 2:
        raise _CellError(_("“%(value)s” has more than two decimals.") % {"value": text})
    if len(integer.lstrip("0")) > MAX_INTEGER_DIGITS:
        raise _CellError(_("“%(value)s” is too large an amount.") % {"value": text})
    return value


def _service_errors(error: ValidationError) -> dict[str, str]:
    """A service's refusal, by the file's column names: its date is ``date``, a refusal of the whole row ``row``."""
    if not hasattr(error, "error_dict"):
        return {"row": " ".join(error.messages)}
    names = {"occurred_on": "date", NON_FIELD_ERRORS: "row"}
    return {names.get(field, field): " ".join(messages) for field, messages in error.message_dict.items()}


@transaction.atomic
def _import_store(
    *, user: AbstractBaseUser, filename: str, csv_file: CsvFile, report: list[dict[str, Any]]
) -> OutcomeImport:
    recorded = sum(entry["result"] == RECORDED for entry in report)
    corrected = sum(entry["result"] == CORRECTED for entry in report)
    imported = OutcomeImport.objects.create(
        filename=_clean_filename(filename),
        encoding="utf-8-sig" if csv_file.bom else csv_file.encoding,
        uploaded_by=user,
        rows_total=len(report),
        rows_recorded=recorded + corrected,
        rows_rejected=len(report) - recorded - corrected,
        report=report,
    )
    audit_record(
        actor=Actor(user=user),
        action="outcomes.imported",
        obj=imported,
        after={
            "filename": imported.filename,
            "rows": len(report),
            "recorded": recorded,
            "corrected": corrected,
            "rejected": imported.rows_rejected,
        },
    )
    return imported


def _clean_filename(filename: str) -> str:
    """The file's own name, without any folder a browser may send."""
    name = PurePath((filename or "").replace("\\", "/")).name.strip()
    return (name or "outcomes.csv")[:200]


# --- the report as a file ------------------------------------------------------------------------


def report_csv(imported: OutcomeImport) -> bytes:
    """The report for French Excel: UTF-8 with a BOM, ``;`` between cells, one line per row of the file."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";")
    writer.writerow([_("line"), _("dossier"), _("result"), _("errors")])
    results = {RECORDED: _("recorded"), CORRECTED: _("corrected"), REJECTED: _("rejected")}
    for entry in imported.report:
        errors = " | ".join(f"{label}: {message}" for label, message in entry_errors(entry))
        writer.writerow([entry["line"], entry["dossier"], results.get(entry["result"], entry["result"]), errors])
    return "\ufeff".encode() + out.getvalue().encode("utf-8")


def entry_errors(entry: dict[str, Any]) -> list[tuple[str, str]]:
    """A report entry's errors as (column label, message), in the file's column order: the row's own first.

    The report is stored as JSON, which PostgreSQL does not keep in order; the order is the reader's.
    """
    order = ("row", *FIELDS)
    errors = entry.get("errors") or {}
    return [
        (_("row") if field == "row" else field_label(field) if field in FIELDS else field, errors[field])
        for field in sorted(errors, key=lambda name: order.index(name) if name in order else len(order))
    ]
