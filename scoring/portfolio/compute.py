"""Re-scoring one chunk of a portfolio: read what is on file, refresh the events, predict, explain what moved.

Nothing here writes: ``runs.portfolio_chunk_process`` stores what ``chunk_compute`` returns under the
chunk's lease. Each stage is timed (read, features, predict, explain) for the run's report.

What a company is re-scored from:

- the features of its latest scored dossier's ``FeatureSnapshot`` (the data on file when a lender
  last applied);
- refreshed with the negative events on file that were **recorded after that snapshot** and occurred
  in the last 12 months, visible to the dossier's partner (unreported ones and the partner's own), merged
  exactly as ``scoring.sources.merge_events`` merges them into a new application. Events recorded
  before the snapshot are already counted in it; counting only the later ones never counts an event
  twice. (An event counted in the snapshot that has since left the 12-month window stays counted until
  the company's next application: the snapshot keeps no per-event detail to take it out.)

One SQL statement per chunk reads all of it: the latest snapshot per company (a window over the
company's scored dossiers), the events grouped by company, and the company's previous score (one
probe of ``cscore_company_latest_idx``). It is written in SQL that PostgreSQL and SQLite both run.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from alerts.models import NegativeEvent, WatchedCompany
from dossiers.models import Decision, Dossier
from riskoffice.crypto import decrypt_json
from riskoffice.models import ApiClient
from scoring.model import engine
from scoring.models import CompanyScore, FeatureSnapshot, PortfolioRun, Score
from scoring.policy.scale import band_for, score_for
from scoring.sources import merge_events
from scoring.sources.base import GatheredData
from scoring.sources.on_file import events_result

FETCH_ROWS = 2000  # rows taken from the cursor at a time


@dataclass(frozen=True)
class ChunkSpec:
    """What a chunk covers and how it is scored: enough for ``chunk_compute``, no ORM objects."""

    run_id: int
    segment: str
    company_from: int
    company_to: int
    move_threshold: int
    scope: str = PortfolioRun.Scope.PORTFOLIO


@dataclass
class ChunkRows:
    """The chunk's companies as read and refreshed, in company id order."""

    company_ids: list[int] = field(default_factory=list)
    features: list[dict[str, Any]] = field(default_factory=list)
    previous_score: list[int | None] = field(default_factory=list)
    previous_band: list[str] = field(default_factory=list)
    refreshed: int = 0  # companies whose events on file changed their features


@dataclass(frozen=True)
class ScoredRow:
    company_id: int
    probability_of_default: float
    score: int
    band: str
    previous_score: int | None
    previous_band: str
    base_value: float | None = None
    contributions: dict[str, float] | None = None
    factors: list[dict[str, Any]] | None = None


@dataclass
class ChunkResult:
    rows: list[ScoredRow]
    moved: int
    refreshed: int
    timings: dict[str, float]


def chunk_compute(spec: ChunkSpec, loaded: engine.LoadedModel, *, on_stage: Any = None) -> ChunkResult:
    """Score every company of the chunk with ``loaded``; explain only those that moved.

    ``on_stage()`` is called between stages (the caller renews its lease there).
    """
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 6)
        if on_stage is not None:
            on_stage()  # the lease renewal is counted in no stage
        clock = time.perf_counter()

    raw = chunk_read(spec)
    lap("read")
    read = chunk_features(raw)
    matrix = encode_columns(loaded, read.features)
    lap("features")
    pds = predict_matrix(loaded, matrix)
    scores = [score_for(pd, spec.segment) for pd in pds.tolist()]
    bands = [band_for(pd) for pd in pds.tolist()]
    lap("predict")
    moved = [
        i
        for i, previous in enumerate(read.previous_score)
        if previous is not None
        and (abs(scores[i] - previous) >= spec.move_threshold or bands[i] != read.previous_band[i])
    ]
    explained = explain_rows(loaded, read.features, moved)
    factors = {i: engine.factors_from(explanation, read.features[i]) for i, explanation in explained.items()}
    lap("explain")
    rows = []
    for i, company_id in enumerate(read.company_ids):
        explanation = explained.get(i)
        if explanation is None:
            pd = float(pds[i])
            rows.append(ScoredRow(company_id, pd, scores[i], bands[i], read.previous_score[i], read.previous_band[i]))
            continue
        # A moved row's PD is its explanation's (base + Σ contributions), as a dossier's is.
        pd = explanation.probability_of_default
        rows.append(
            ScoredRow(
                company_id,
                pd,
                score_for(pd, spec.segment),
                band_for(pd),
                read.previous_score[i],
                read.previous_band[i],
                base_value=explanation.base_value,
                contributions=explanation.contributions,
                factors=factors[i],
            )
        )
    lap("write")  # building the rows to write; the store adds the database's part
    return ChunkResult(rows=rows, moved=len(moved), refreshed=read.refreshed, timings=timings)


# --- read -------------------------------------------------------------------------------------------


def monitored_filter_sql(column: str, *, bounds: tuple[str, str] | None = None) -> str:
    """``<column> IN (the monitored companies)``, for raw SQL: open exposure or a partner's watch.

    The rule of ``alerts.selectors.monitored_companies`` (a partner's dossier whose decision grants credit,
    with no outcome yet; or a WatchedCompany row), written once in SQL that PostgreSQL and SQLite both run.
    ``bounds``: two placeholders limiting the company ids (a chunk's range), so a chunk reads its own part only.
    """
    within_x = f"AND x.company_id BETWEEN {bounds[0]} AND {bounds[1]}" if bounds else ""
    within_w = f"WHERE w.company_id BETWEEN {bounds[0]} AND {bounds[1]}" if bounds else ""
    from dossiers.models import Outcome
    from dossiers.selectors import GRANTED_DECISIONS

    granted = ", ".join(f"'{Decision(decision).value}'" for decision in GRANTED_DECISIONS)  # our own constants
    return f"""{column} IN (
        SELECT x.company_id FROM {Dossier._meta.db_table} x
        LEFT JOIN {Outcome._meta.db_table} o ON o.dossier_id = x.id
        WHERE x.partner_id IS NOT NULL AND x.company_id IS NOT NULL AND x.decision IN ({granted}) AND o.id IS NULL
              {within_x}
        UNION SELECT w.company_id FROM {WatchedCompany._meta.db_table} w {within_w}
    )"""  # noqa: S608


def _read_sql(scope: str = PortfolioRun.Scope.PORTFOLIO) -> str:
    t = {
        "dossier": Dossier._meta.db_table,
        "score": Score._meta.db_table,
        "snapshot": FeatureSnapshot._meta.db_table,
        "event": NegativeEvent._meta.db_table,
        "client": ApiClient._meta.db_table,
        "cscore": CompanyScore._meta.db_table,
        "run": PortfolioRun._meta.db_table,
    }
    kinds = NegativeEvent.Kind
    monitored = ""
    if scope == PortfolioRun.Scope.MONITORED:
        monitored = f"AND {monitored_filter_sql('d.company_id', bounds=('%(lo)s', '%(hi)s'))}"
    # PostgreSQL computes the events once (MATERIALIZED): with stale statistics (after a bulk load, before
    # autovacuum's ANALYZE) it otherwise expects one row of "latest" and re-runs the events aggregate per
    # company — 6.5 s instead of 0.05 s for 1,100 companies (docs/benchmarks.md, "Monitoring and alerts").
    materialized = "MATERIALIZED " if connection.vendor == "postgresql" else ""
    # Only table names and the event kinds (our own constants) are formatted in; values are parameters.
    return f"""
WITH latest AS (
    SELECT company_id, partner_id, features, collected_at, score, band, scored_at FROM (
        SELECT d.company_id, d.partner_id, fs.features, fs.collected_at, s.score, s.band,
               s.created_at AS scored_at,
               ROW_NUMBER() OVER (PARTITION BY d.company_id ORDER BY s.created_at DESC, s.id DESC) AS rn
        FROM {t["dossier"]} d
        JOIN {t["score"]} s ON s.dossier_id = d.id
        JOIN {t["snapshot"]} fs ON fs.id = s.snapshot_id
        WHERE d.company_id BETWEEN %(lo)s AND %(hi)s AND d.status = 'scored' AND d.segment = %(segment)s
              {monitored}
    ) ranked WHERE rn = 1
),
events AS {materialized}(
    SELECT e.company_id,
           SUM(CASE WHEN e.kind = '{kinds.PAYMENT_DELAY}' THEN 1 ELSE 0 END) AS delays,
           MAX(CASE WHEN e.kind = '{kinds.PAYMENT_DELAY}' THEN e.days_late END) AS max_delay,
           SUM(CASE WHEN e.kind = '{kinds.SEPA_INCIDENT}' THEN 1 ELSE 0 END) AS sepa,
           SUM(CASE WHEN e.kind = '{kinds.INSOLVENCY_PROCEEDING}' THEN 1 ELSE 0 END) AS insolvency
    FROM {t["event"]} e
    JOIN latest l ON l.company_id = e.company_id
    LEFT JOIN {t["client"]} c ON c.id = e.reported_by_id
    WHERE e.company_id BETWEEN %(lo)s AND %(hi)s
      AND e.kind IN ('{kinds.PAYMENT_DELAY}', '{kinds.SEPA_INCIDENT}', '{kinds.INSOLVENCY_PROCEEDING}')
      AND e.occurred_on > %(since)s AND e.occurred_on <= %(today)s
      AND e.created_at > l.collected_at
      AND (e.reported_by_id IS NULL OR c.partner_id = l.partner_id)
    GROUP BY e.company_id
)
SELECT l.company_id, l.features, l.score, l.band, p.score, p.band,
       CASE WHEN r.started_at > l.scored_at THEN 1 ELSE 0 END AS run_is_newer,
       ev.delays, ev.max_delay, ev.sepa, ev.insolvency
FROM latest l
LEFT JOIN {t["cscore"]} p ON p.id = (
    SELECT cs.id FROM {t["cscore"]} cs
    WHERE cs.company_id = l.company_id AND cs.run_id < %(run)s
    ORDER BY cs.run_id DESC LIMIT 1
)
LEFT JOIN {t["run"]} r ON r.id = p.run_id
LEFT JOIN events ev ON ev.company_id = l.company_id
"""  # noqa: S608


def chunk_read(spec: ChunkSpec, today: date | None = None) -> list[tuple[Any, ...]]:
    """The chunk's rows as the database returns them (one statement, fetched in batches)."""
    today = today or timezone.localdate()
    params = {
        "lo": spec.company_from,
        "hi": spec.company_to,
        "segment": spec.segment,
        "since": today - timedelta(days=365),
        "today": today,
        "run": spec.run_id,
    }
    rows: list[tuple[Any, ...]] = []
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The plan this read needs is index probes per company (dossier → score → snapshot). PostgreSQL's
            # default cost model (random_page_cost = 4, for spinning disks) prices 10,000 probes into hot
            # tables above a parallel scan of the million-row score table, which made the read 4× slower
            # (EXPLAIN ANALYZE: 0.93 s → 0.23 s a chunk of 10,000). Parallel workers only fight the Celery
            # processes for the same cores. Both settings end with this transaction.
            cursor.execute("SET LOCAL random_page_cost = 1.1")
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        cursor.execute(_read_sql(spec.scope), params)
        while batch := cursor.fetchmany(FETCH_ROWS):
            rows.extend(batch)
    rows.sort(key=lambda row: row[0])  # company order: the scores' index grows in order (no SQL sort to spill)
    return rows


# --- features ---------------------------------------------------------------------------------------


def chunk_features(raw: list[tuple[Any, ...]]) -> ChunkRows:
    """Parse each snapshot, merge the events recorded since, and pick the previous score."""
    read = ChunkRows()
    for company_id, features, d_score, d_band, p_score, p_band, run_is_newer, *counts in raw:
        features = dict(decrypt_json(features))  # the snapshot's features are encrypted (riskoffice/crypto.py)
        if any(counts):  # events recorded since the snapshot
            read.refreshed += events_refresh(features, *counts)
        read.company_ids.append(int(company_id))
        read.features.append(features)
        # The last score the lender saw: the previous run's, unless a dossier was scored after it. (Compared
        # in SQL: parsing two timestamps a row in Python cost more than the rest of the read.)
        if p_score is not None and run_is_newer:
            read.previous_score.append(int(p_score))
            read.previous_band.append(p_band)
        else:
            read.previous_score.append(None if d_score is None else int(d_score))
            read.previous_band.append(d_band or "")
    return read


def events_refresh(features: dict[str, Any], delays: int, max_delay: int | None, sepa: int, insolvency: int) -> int:
    """Merge events on file into a snapshot's features as a new application would (``merge_events``).

    Returns 1 when the features changed, 0 otherwise.
    """
    counts = {
        "delays": int(delays or 0),
        "max_delay": max_delay,
        "sepa": int(sepa or 0),
        "insolvency": int(insolvency or 0),
    }
    events = events_result(counts)  # what a new application reads from the same counts
    data = events.data
    rejected = features.get("rejected_sepa_debits_12m")
    gathered = GatheredData(
        events={
            "payment_delays_12m": features.get("payment_delays_12m") or 0,
            "max_payment_delay_days": features.get("max_payment_delay_days") or 0,
            "open_insolvency_proceeding": features.get("open_insolvency_proceeding"),
        },
        bank=None if rejected is None else {"rejected_sepa_debits_12m": rejected},
    )
    merge_events(gathered, events, always_report=False)
    before = dict(features)
    # Written back as build_features writes them; a feature no event touched keeps its stored value.
    if data["payment_delays_12m"]:
        features["payment_delays_12m"] = gathered.events["payment_delays_12m"]
        features["max_payment_delay_days"] = gathered.events["max_payment_delay_days"]
    if data["insolvency_proceeding"]:
        features["open_insolvency_proceeding"] = int(bool(gathered.events["open_insolvency_proceeding"]))
    if data["sepa_incidents_12m"]:
        features["rejected_sepa_debits_12m"] = gathered.bank["rejected_sepa_debits_12m"]
    return int(features != before)


def encode_columns(loaded: engine.LoadedModel, rows: list[dict[str, Any]]) -> np.ndarray:
    """The rows as the model's float matrix, a column at a time (``engine.encode_rows``'s result, faster).

    Missing values (None, NaN) become NaN; a category the model never saw becomes NaN.
    """
    matrix = np.empty((len(rows), len(loaded.feature_names)), dtype=np.float64)
    for j, name in enumerate(loaded.feature_names):
        codes = loaded.category_codes.get(name)
        if codes is None:
            matrix[:, j] = np.array([row.get(name) for row in rows], dtype=np.float64)  # None → NaN
        else:
            matrix[:, j] = [math.nan if v is None else codes.get(str(v), math.nan) for v in (r.get(name) for r in rows)]
    return matrix


def predict_matrix(loaded: engine.LoadedModel, matrix: np.ndarray) -> np.ndarray:
    """Calibrated PDs of an encoded matrix (``engine.predict_pd`` without the encoding)."""
    if not len(matrix):
        return np.empty(0)
    margin = loaded.booster.predict(engine.dmatrix(loaded, matrix), output_margin=True).astype(np.float64)
    return engine.calibrated_pd(margin, loaded.calibration)


def explain_rows(loaded: engine.LoadedModel, features: list[dict[str, Any]], indexes: list[int]) -> dict[int, Any]:
    """Exact TreeSHAP of the given rows only, by their index: one ``explain_many`` call."""
    if not indexes:
        return {}
    explanations = engine.explain_many(loaded, [features[i] for i in indexes])
    return dict(zip(indexes, explanations, strict=True))
