"""Insolvency notices from BODACC's open data (Opendatasoft Explore API v2.1, no authentication).

The company's collective-proceeding notices (``familleavis="collective"``),
newest first. Each notice's judgment is classified by its words: sauvegarde,
redressement, liquidation, plan de cession open or continue a proceeding; a
clôture (or a judgment ending it) closes it. A proceeding is open when the latest
opening judgment is later than the latest closing one. Cached per SIREN for
``SOURCE_CACHE_SECONDS_BODACC``.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings

from scoring.sources.base import HttpSource, SourceFailed, SourceResult, cached_answer, failed, plain_text

SOURCE = "bodacc"
RECORDS_PATH = "/api/explore/v2.1/catalog/datasets/annonces-commerciales/records"
PAGE_SIZE = 100
MAX_PAGES = 10  # 1,000 notices, newest first: far more than any company has

OPENING_KINDS = ("liquidation", "redressement", "sauvegarde", "plan_de_cession")
# Checked in this order: "Jugement de clôture pour insuffisance d'actif" of a liquidation is a closure.
KIND_WORDS = (
    ("closure", ("cloture", "mettant fin", "met fin", "fin de la procedure", "execution du plan", "infirm")),
    ("liquidation", ("liquidation",)),
    ("redressement", ("redressement",)),
    ("sauvegarde", ("sauvegarde",)),
    ("plan_de_cession", ("plan de cession",)),
)


def _records(client: HttpSource, where: str) -> list[Any]:
    """Every record matching the ODSQL ``where``, newest first, page after page (at most MAX_PAGES).

    Raises ``SourceFailed`` on any page's failure or odd answer: a caller gets all the pages or nothing.
    """
    records: list[Any] = []
    for page in range(MAX_PAGES):
        body = client.get_json(
            RECORDS_PATH,
            params={"where": where, "order_by": "dateparution desc", "limit": PAGE_SIZE, "offset": page * PAGE_SIZE},
        )
        found = body.get("results") if isinstance(body, dict) else None
        if not isinstance(found, list):
            raise SourceFailed("unexpected answer: no results list")
        records.extend(found)
        if len(found) < PAGE_SIZE or (page + 1) * PAGE_SIZE >= int(body.get("total_count") or 0):
            break
    return records


def bodacc_lookup(siren: str) -> SourceResult:
    """Whether an insolvency proceeding is open for ``siren``, from its BODACC notices."""
    if not siren.isdigit():  # it goes into an ODSQL where clause
        return failed(SOURCE, "not a SIREN")
    client = HttpSource(SOURCE, settings.BODACC_URL)

    def fetch() -> dict[str, Any]:
        records = _records(client, f'registre="{siren}" AND familleavis="collective"')
        return {"notices": [n for n in (notice_from(r, siren) for r in records) if n is not None]}

    try:
        answer = cached_answer(source=SOURCE, key=siren, ttl_seconds=settings.SOURCE_CACHE_SECONDS_BODACC, fetch=fetch)
    except SourceFailed as exc:
        return failed(SOURCE, str(exc))
    notices = answer.payload.get("notices", [])
    opened = open_proceeding(notices)
    if opened:
        detail = f"open: {opened['kind'].replace('_', ' ')} since {opened['date']}"
    elif notices:
        detail = f"{len(notices)} notice(s), no proceeding open"
    else:
        detail = "no collective-proceeding notice"
    return SourceResult(
        SOURCE,
        "ok",
        answer.fetched_at,
        detail=detail,
        cached=answer.cached,
        age_seconds=answer.age_seconds,
        data={"open_insolvency_proceeding": opened is not None, "open_proceeding": opened, "notices": notices},
    )


def notice_from(record: Any, siren: str) -> dict[str, Any] | None:
    """A classified notice about ``siren``, or None (another company, a cancelled or unclassifiable notice)."""
    if not isinstance(record, dict) or record.get("typeavis") == "annulation":
        return None
    registre = record.get("registre")
    if registre is not None and siren not in _sirens_of(registre):
        return None
    judgment = record.get("jugement")
    if isinstance(judgment, str):  # usually a JSON string; some clients see an object
        try:
            judgment = json.loads(judgment)
        except ValueError:
            return None
    if not isinstance(judgment, dict):
        return None
    nature = str(judgment.get("nature") or "")
    kind = classify(f"{judgment.get('famille') or ''} {nature}")
    if kind is None:
        return None
    when = str(judgment.get("date") or record.get("dateparution") or "")[:10]
    return {
        "id": str(record.get("id") or ""),
        "date": when,
        "kind": kind,
        "nature": nature[:200],
        "published": str(record.get("dateparution") or "")[:10],
    }


def classify(text: str) -> str | None:
    words = plain_text(text).lower()
    for kind, needles in KIND_WORDS:
        if any(needle in words for needle in needles):
            return kind
    return None


def open_proceeding(notices: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The latest opening notice when no closure is dated on or after it."""
    openings = [n for n in notices if n["kind"] in OPENING_KINDS and n["date"]]
    if not openings:
        return None
    latest_opening = max(openings, key=lambda n: n["date"])
    closures = [n["date"] for n in notices if n["kind"] == "closure" and n["date"]]
    if closures and max(closures) >= latest_opening["date"]:
        return None
    return latest_opening


def _sirens_of(registre: Any) -> set[str]:
    """'833 310 592,833310592' or ['833 310 592', '833310592'] → {'833310592'}."""
    items = registre if isinstance(registre, list) else str(registre).split(",")
    return {"".join(str(item).split()) for item in items}


# --- monitoring: new notices of a monitored SIREN (alerts/bodacc_watch.py) ------------------------------

WATCHED_FAMILIES = ("collective", "dpc")  # collective proceedings; dépôts des comptes (accounts filed)


def bodacc_recent_notices(siren: str, *, since: str) -> list[dict[str, Any]]:
    """The SIREN's notices published on or after ``since`` (YYYY-MM-DD), newest first, with their BODACC ids.

    Each is ``notice_from``'s notice plus ``famille`` and ``tribunal``; a deposit of accounts (``dpc``) has
    kind ``accounts``. Never cached (a check wants today's notices). Every page is read before anything is
    returned: ``SourceFailed`` (timeout, outage, an odd answer) means nothing at all, never half a list.
    """
    if not siren.isdigit() or len(since) != 10:  # both go into an ODSQL where clause
        raise SourceFailed("not a SIREN or not a date")
    client = HttpSource(SOURCE, settings.BODACC_URL)
    families = " OR ".join(f'familleavis="{family}"' for family in WATCHED_FAMILIES)
    records = _records(client, f"registre=\"{siren}\" AND ({families}) AND dateparution>=date'{since}'")
    return [n for n in (watch_notice_from(r, siren) for r in records) if n is not None]


def watch_notice_from(record: Any, siren: str) -> dict[str, Any] | None:
    """A notice with its BODACC id, family and court, or None (no id, another company, cancelled, unclassified)."""
    if not isinstance(record, dict) or not record.get("id"):
        return None
    family = str(record.get("familleavis") or "")
    extra = {"famille": family, "tribunal": str(record.get("tribunal") or "")[:200]}
    if family == "dpc":
        if record.get("typeavis") == "annulation":
            return None
        registre = record.get("registre")
        if registre is not None and siren not in _sirens_of(registre):
            return None
        deposit = record.get("depot")
        if isinstance(deposit, str):
            try:
                deposit = json.loads(deposit)
            except ValueError:
                deposit = None
        deposit = deposit if isinstance(deposit, dict) else {}
        published = str(record.get("dateparution") or "")[:10]
        return {
            "id": str(record["id"]),
            "date": published,
            "kind": "accounts",
            "nature": str(deposit.get("typeDepot") or "")[:200],
            "published": published,
            "closing_date": str(deposit.get("dateCloture") or "")[:10],
            **extra,
        }
    notice = notice_from(record, siren)
    return None if notice is None else {**notice, **extra}
