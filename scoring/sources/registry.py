"""The company registry: France's "API Recherche d'entreprises" (public, no authentication).

``GET {COMPANY_REGISTRY_URL}/search?q=<SIREN>&page=1&per_page=1``: identity, NAF
code and section, creation date, headcount band, active or ceased, and the
published revenue and net income of the latest year (often missing). Cached per
SIREN for ``SOURCE_CACHE_SECONDS_REGISTRY``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.conf import settings
from django.utils import timezone

from scoring.model.features import HEADCOUNT_BANDS
from scoring.sources.base import HttpSource, SourceFailed, SourceResult, cached_answer, failed

SOURCE = "registry"
# What we keep of a registry record (public company data): enough to map, nothing more.
KEPT_FIELDS = (
    "siren",
    "nom_complet",
    "nom_raison_sociale",
    "nature_juridique",
    "activite_principale",
    "section_activite_principale",
    "date_creation",
    "date_fermeture",
    "etat_administratif",
    "tranche_effectif_salarie",
    "finances",
)


def registry_lookup(siren: str) -> SourceResult:
    """The registry's record of ``siren``, mapped to identity, company and published financials."""
    client = HttpSource(SOURCE, settings.COMPANY_REGISTRY_URL)

    def fetch() -> dict[str, Any]:
        body = client.get_json("/search", params={"q": siren, "page": 1, "per_page": 1})
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise SourceFailed("unexpected answer: no results list")
        for record in results:
            if isinstance(record, dict) and record.get("siren") == siren:
                return {name: record.get(name) for name in KEPT_FIELDS}
        return {}  # not found: an answer too, cached like one

    try:
        answer = cached_answer(
            source=SOURCE, key=siren, ttl_seconds=settings.SOURCE_CACHE_SECONDS_REGISTRY, fetch=fetch
        )
    except SourceFailed as exc:
        return failed(SOURCE, str(exc))
    freshness = {"cached": answer.cached, "age_seconds": answer.age_seconds}
    if not answer.payload:
        return SourceResult(SOURCE, "missing", answer.fetched_at, detail="SIREN not found in the registry", **freshness)
    mapped = registry_mapped(answer.payload, timezone.localdate())
    year = mapped.pop("accounts_year")
    detail = f"accounts {year} published" if year else "no published accounts"
    if not mapped["identity"]["active"]:
        detail = f"ceased company; {detail}"
    return SourceResult(SOURCE, "ok", answer.fetched_at, data=mapped, detail=detail, **freshness)


def registry_mapped(record: dict[str, Any], today: date) -> dict[str, Any]:
    """A registry record as identity, company and financials (the keys ``build_features`` reads)."""
    active = record.get("etat_administratif") != "C"
    name = record.get("nom_complet") or record.get("nom_raison_sociale") or ""
    identity: dict[str, Any] = {"active": active}
    if name:
        identity["name"] = str(name)[:200]
    if record.get("activite_principale"):
        identity["naf_code"] = str(record["activite_principale"])[:6]
    created = _date(record.get("date_creation"))
    band = record.get("tranche_effectif_salarie")
    company = {
        "age_years": round((today - created).days / 365.25, 2) if created and created <= today else None,
        "naf_section": record.get("section_activite_principale") or None,
        "headcount": HEADCOUNT_BANDS.get(band) if isinstance(band, str) else None,
        "active": active,
    }
    year, financials = _latest_accounts(record.get("finances"))
    return {"identity": identity, "company": company, "financials": financials, "accounts_year": year}


def _latest_accounts(finances: Any) -> tuple[str | None, dict[str, float]]:
    """Revenue and net income of the latest year that has either; the registry publishes nothing else."""
    if not isinstance(finances, dict):
        return None, {}
    for year in sorted(finances, reverse=True):
        figures = finances[year] if isinstance(finances[year], dict) else {}
        mapped = {
            name: float(figures[key])
            for key, name in (("ca", "revenue"), ("resultat_net", "net_income"))
            if isinstance(figures.get(key), (int, float)) and not isinstance(figures.get(key), bool)
        }
        if mapped:
            return str(year), mapped
    return None, {}


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None
