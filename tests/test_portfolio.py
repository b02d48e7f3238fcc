"""Portfolio re-score: `manage.py rescore_portfolio` and the chunk task, with who takes a chunk and who may store it.

Every company with a scored dossier is scored again with the B2B champion from the features on file,
refreshed with the negative events recorded since; its explanation is kept only where the score moved.
Chunks are taken under a lease: a dead worker's chunk is taken over, and the late worker's write is refused.
"""

from __future__ import annotations

import io
import json
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from alerts.models import NegativeEvent
from dossiers.models import Company, Dossier
from riskoffice.celery import app
from riskoffice.models import AuditEvent
from scoring.model import engine
from scoring.model.features import jsonable_features
from scoring.model.synthetic import generate_portfolio, siren_from_number
from scoring.models import CompanyScore, FeatureSnapshot, ModelVersion, PortfolioChunk, PortfolioRun, Score
from scoring.policy.scale import band_for, score_for
from scoring.portfolio import runs
from scoring.portfolio.compute import ChunkSpec, chunk_features, chunk_read, encode_columns
from scoring.portfolio.tasks import requeue_portfolio_chunks, rescore_chunk
from scoring.selectors import policy_current

# --- a portfolio on file ------------------------------------------------------------------------------


def scored_company(n: int, features: dict[str, Any], champion: ModelVersion, *, partner: Any = None) -> Company:
    """A company with one dossier scored from ``features`` by the champion, its data collected ten days ago."""
    company = Company.objects.create(siren=siren_from_number(10_000 + n))
    dossier = Dossier.objects.create(
        company=company, partner=partner, requested_amount=Decimal(20000), status=Dossier.Status.SCORED
    )
    score_dossier(dossier, features, champion, collected_at=timezone.now() - timedelta(days=10))
    return company


def score_dossier(dossier: Dossier, features: dict[str, Any], champion: ModelVersion, *, collected_at: Any) -> Score:
    explanation = engine.explain_one(engine.model_load(champion), features)
    pd = explanation.probability_of_default
    snapshot = FeatureSnapshot.objects.create(
        dossier=dossier, features=jsonable_features(features), collected_at=collected_at
    )
    return Score.objects.create(
        dossier=dossier,
        snapshot=snapshot,
        model_version=champion,
        policy_version=policy_current("b2b"),
        probability_of_default=pd,
        score=score_for(pd, "b2b"),
        band=band_for(pd),
        decision="accept",
        base_value=explanation.base_value,
        contributions=explanation.contributions,
        factors=[],
    )


def portfolio(champion: ModelVersion, n: int = 7, **kwargs: Any) -> list[Company]:
    books = generate_portfolio(n, seed=17)
    return [scored_company(i, company.features(), champion, **kwargs) for i, (company, _, _) in enumerate(books)]


def event(company: Company, kind: str = NegativeEvent.Kind.INSOLVENCY_PROCEEDING, **fields: Any) -> NegativeEvent:
    fields.setdefault("occurred_on", timezone.localdate() - timedelta(days=3))
    return NegativeEvent.objects.create(company=company, kind=kind, source="analyst", **fields)


def snapshot_features(company: Company) -> dict[str, Any]:
    return dict(FeatureSnapshot.objects.get(dossier__company=company).features)


def run_all_chunks(run: PortfolioRun) -> None:
    """What the workers do: the chunk task, once per chunk."""
    for chunk_id in run.chunks.order_by("sequence").values_list("pk", flat=True):
        rescore_chunk(chunk_id)


def start(chunk_size: int = 3) -> PortfolioRun:
    """`manage.py rescore_portfolio` without --wait: the run and its chunks, enqueued for the workers."""
    out = io.StringIO()
    call_command("rescore_portfolio", "--chunk-size", str(chunk_size), stdout=out)
    return PortfolioRun.objects.latest("pk")


def chunk_queue() -> str:
    """The queue the chunk task is routed to (the default queue when no route names one)."""
    route = (getattr(settings, "CELERY_TASK_ROUTES", None) or {}).get(rescore_chunk.name, {})
    return route.get("queue", getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery"))


def broker_messages() -> list[tuple[str, str]]:
    """(task name, args) of the messages waiting on the real broker's queue for chunks, taken off it."""
    found = []
    with app.connection_for_read() as connection:
        queue = connection.SimpleQueue(chunk_queue(), no_ack=True)
        while True:
            try:
                message = queue.get(timeout=0.5)
            except queue.Empty:
                break
            found.append((message.headers["task"], message.headers["argsrepr"]))
        queue.close()
    return found


# --- a run --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_run_rescores_every_company_once_with_the_champion(champion):
    """Each company with a scored dossier gets one CompanyScore: the champion's PD of its features on file."""
    companies = portfolio(champion, 7)
    run = start(chunk_size=3)
    assert (run.chunks_total, run.companies_total, run.model_version_id) == (3, 7, champion.pk)
    ranges = list(run.chunks.order_by("sequence").values_list("company_from", "company_to"))
    assert ranges[0][0] == companies[0].pk and ranges[-1][1] == companies[-1].pk

    run_all_chunks(run)

    run.refresh_from_db()
    assert run.status == PortfolioRun.Status.DONE and run.finished_at is not None
    assert (run.chunks_done, run.rows_done) == (3, 7)
    assert set(run.timings) == {"read", "features", "predict", "explain", "write"}
    loaded = engine.model_load(champion)
    for company in companies:
        score = CompanyScore.objects.get(run=run, company=company)
        expected = engine.predict_pd(loaded, [snapshot_features(company)])[0]
        assert score.probability_of_default == pytest.approx(expected, rel=1e-9)
        assert (score.score, score.band) == (score_for(expected, "b2b"), band_for(expected))
    assert list(
        AuditEvent.objects.filter(object_type="scoring.portfoliorun", object_id=str(run.pk))
        .values_list("action", flat=True)
        .order_by("pk")
    ) == [
        "portfolio_run.started",
        "portfolio_run.finished",
    ]
    chunk = run.chunks.first()
    assert chunk.attempts == 1 and chunk.peak_rss_kb > 0 and chunk.worker


@pytest.mark.django_db
def test_the_previous_score_is_the_dossiers_then_the_last_runs_and_delta_is_the_difference(champion):
    """The first run compares with the dossier's score, the next with the previous run's; a newer dossier wins."""
    companies = portfolio(champion, 4)
    first = start()
    run_all_chunks(first)
    for company in companies:
        score = CompanyScore.objects.get(run=first, company=company)
        dossier_score = Score.objects.get(dossier__company=company)
        assert (score.previous_score, score.previous_band) == (dossier_score.score, dossier_score.band)
        assert score.delta == score.score - dossier_score.score

    event(companies[0])  # an insolvency proceeding on file since the snapshot: the score falls
    renewed = companies[1]  # a new application scored after the first run, from other data
    newer = Dossier.objects.create(company=renewed, requested_amount=Decimal(5000), status=Dossier.Status.SCORED)
    other_features = generate_portfolio(30, seed=3)[-1][0].features()
    new_score = score_dossier(newer, other_features, champion, collected_at=timezone.now())

    second = start()
    run_all_chunks(second)
    dropped = CompanyScore.objects.get(run=second, company=companies[0])
    before = CompanyScore.objects.get(run=first, company=companies[0])
    assert (dropped.previous_score, dropped.previous_band) == (before.score, before.band)
    assert dropped.delta == dropped.score - before.score < 0
    rescored = CompanyScore.objects.get(run=second, company=renewed)
    assert (rescored.previous_score, rescored.previous_band) == (new_score.score, new_score.band)
    # The dossier's PD is its SHAP sum, the re-score's the booster's margin: equal to float32 precision.
    assert rescored.probability_of_default == pytest.approx(new_score.probability_of_default, rel=1e-5)
    steady = CompanyScore.objects.get(run=second, company=companies[2])
    assert steady.delta == 0 and steady.contributions is None


@pytest.mark.django_db
def test_shap_is_stored_only_where_the_score_moved_and_equals_a_single_dossier_explanation(champion, settings):
    """Moved rows (threshold or band change) carry exact TreeSHAP equal to explain_one on the refreshed features."""
    settings.PORTFOLIO_MOVE_THRESHOLD = 2
    companies = portfolio(champion, 6)
    moved = companies[:2]
    event(moved[0])
    for _ in range(8):
        event(moved[1], NegativeEvent.Kind.PAYMENT_DELAY, days_late=120)
        event(moved[1], NegativeEvent.Kind.SEPA_INCIDENT)
    run = start()
    run_all_chunks(run)
    run.refresh_from_db()

    loaded = engine.model_load(champion)
    for company in companies:
        score = CompanyScore.objects.get(run=run, company=company)
        is_moved = abs(score.delta) >= run.move_threshold or score.band != score.previous_band
        assert (score.contributions is not None) == is_moved, company
    refreshed_on_file = chunk_features(chunk_read(ChunkSpec(run.pk, "b2b", moved[1].pk, moved[1].pk, 2))).features[0]
    on_snapshot = snapshot_features(moved[1])
    assert refreshed_on_file["payment_delays_12m"] == (on_snapshot["payment_delays_12m"] or 0) + 8
    assert refreshed_on_file["max_payment_delay_days"] == max(on_snapshot["max_payment_delay_days"] or 0, 120)
    assert refreshed_on_file["rejected_sepa_debits_12m"] == (on_snapshot["rejected_sepa_debits_12m"] or 0) + 8
    explained = set(CompanyScore.objects.filter(run=run, contributions__isnull=False).values_list("company", flat=True))
    assert moved[0].pk in explained and explained <= {c.pk for c in moved}  # only companies with new events move
    assert run.rows_moved == len(explained)

    for company in moved:
        score = CompanyScore.objects.get(run=run, company=company)
        if company.pk not in explained:
            continue
        refreshed = snapshot_features(company)
        if company == moved[0]:
            refreshed["open_insolvency_proceeding"] = 1
        else:
            refreshed["payment_delays_12m"] = (refreshed["payment_delays_12m"] or 0) + 8
            refreshed["max_payment_delay_days"] = max(refreshed["max_payment_delay_days"] or 0, 120)
            refreshed["rejected_sepa_debits_12m"] = (refreshed["rejected_sepa_debits_12m"] or 0) + 8
        single = engine.explain_one(loaded, refreshed)
        assert score.contributions == pytest.approx(single.contributions, abs=1e-9)
        assert score.base_value == pytest.approx(single.base_value, abs=1e-12)
        assert score.probability_of_default == pytest.approx(single.probability_of_default, rel=1e-12)
        assert [f["feature"] for f in score.factors] == [f["feature"] for f in engine.factors_from(single, refreshed)]


@pytest.mark.django_db
def test_only_events_recorded_after_the_snapshot_within_12_months_and_visible_to_the_partner_count(
    champion, marketplace, other_partner
):
    """Events already counted in the snapshot, older than 12 months, or reported by another partner change nothing."""
    (company,) = portfolio(champion, 1, partner=marketplace.partner)
    already_counted = event(company)
    NegativeEvent.objects.filter(pk=already_counted.pk).update(created_at=timezone.now() - timedelta(days=20))
    event(company, occurred_on=timezone.localdate() - timedelta(days=400))
    event(company, reported_by=other_partner.api_client)
    run = start()
    run_all_chunks(run)
    score = CompanyScore.objects.get(run=run, company=company)
    expected = engine.predict_pd(engine.model_load(champion), [snapshot_features(company)])[0]
    assert score.probability_of_default == pytest.approx(expected, rel=1e-9)

    event(company, reported_by=marketplace.api_client)  # the dossier's own partner: counted
    second = start()
    run_all_chunks(second)
    assert CompanyScore.objects.get(run=second, company=company).probability_of_default > expected


@pytest.mark.django_db
def test_the_column_encoder_gives_the_engines_matrix(champion):
    """The chunk's column-wise encoding equals engine.encode_rows, missing values and unknown sectors included."""
    loaded = engine.model_load(champion)
    rows = [company.features() for company, _, _ in generate_portfolio(50, seed=4)]
    rows[0]["naf_section"] = "Z"  # never seen in training
    rows[1]["revenue"] = None
    rows[2]["net_margin"] = float("nan")
    expected = engine.encode_rows(loaded.feature_names, loaded.categories, rows)
    assert encode_columns(loaded, rows) == pytest.approx(expected, nan_ok=True)


# --- leases -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_chunk_whose_lease_expired_is_taken_over_and_the_late_workers_write_is_refused(champion):
    """Worker A computes but its lease expires; B takes the chunk and stores it; A's store writes nothing."""
    portfolio(champion, 5)
    run = start(chunk_size=5)
    chunk = run.chunks.get()

    lease_a = runs.portfolio_chunk_claim(chunk_id=chunk.pk, worker="worker-a:1")
    assert runs.portfolio_chunk_claim(chunk_id=chunk.pk, worker="worker-b:2") is None  # A's lease is live
    result_a = runs.portfolio_chunk_compute(lease_a)
    PortfolioChunk.objects.filter(pk=chunk.pk).update(lease_until=timezone.now() - timedelta(hours=1))

    rescore_chunk(chunk.pk)  # worker B
    chunk.refresh_from_db()
    assert (chunk.status, chunk.attempts) == (PortfolioChunk.Status.DONE, 2)
    assert runs.portfolio_chunk_store(lease_a, result_a) is False
    with pytest.raises(runs.LeaseLost):
        runs.portfolio_chunk_renew(lease_a)
    assert CompanyScore.objects.filter(run=run).count() == 5
    run.refresh_from_db()
    assert (run.status, run.chunks_done, run.rows_done) == (PortfolioRun.Status.DONE, 1, 5)

    rescore_chunk(chunk.pk)  # a duplicate message for a done chunk changes nothing
    chunk.refresh_from_db()
    assert chunk.attempts == 2 and CompanyScore.objects.filter(run=run).count() == 5


@pytest.mark.django_db
def test_a_worker_finishing_its_chunk_takes_over_an_expired_one_of_the_same_run(champion):
    """A dead worker's chunk does not wait for the sweep when another chunk of the run finishes after it expired."""
    portfolio(champion, 6)
    run = start(chunk_size=3)
    dead, alive = run.chunks.order_by("sequence")
    runs.portfolio_chunk_claim(chunk_id=dead.pk, worker="dead:1")
    PortfolioChunk.objects.filter(pk=dead.pk).update(lease_until=timezone.now() - timedelta(hours=1))

    rescore_chunk(alive.pk)

    dead.refresh_from_db()
    assert (dead.status, dead.attempts) == (PortfolioChunk.Status.DONE, 2)
    assert CompanyScore.objects.filter(run=run).count() == 6


@pytest.mark.django_db
def test_the_sweep_reenqueues_an_expired_chunk_once_per_lease_and_fails_a_chunk_that_keeps_failing(champion, settings):
    """The periodic task sends an expired chunk to the real broker again; a chunk out of attempts fails its run."""
    portfolio(champion, 6)
    broker_messages()  # an empty queue to begin with
    run = start(chunk_size=3)
    first, second = run.chunks.order_by("sequence")
    runs.portfolio_chunk_claim(chunk_id=first.pk, worker="dead:1")
    runs.portfolio_chunk_claim(chunk_id=second.pk, worker="alive:2")
    PortfolioChunk.objects.filter(pk=first.pk).update(
        lease_until=timezone.now() - timedelta(hours=1), enqueued_at=timezone.now() - timedelta(hours=1)
    )

    requeue_portfolio_chunks()
    assert broker_messages() == [("scoring.portfolio.rescore_chunk", f"({first.pk},)")]
    requeue_portfolio_chunks()  # sent again only after another lease period
    assert broker_messages() == []

    PortfolioChunk.objects.filter(pk=first.pk).update(attempts=settings.PORTFOLIO_MAX_ATTEMPTS)
    requeue_portfolio_chunks()
    run.refresh_from_db()
    assert run.status == PortfolioRun.Status.FAILED and f"failed {settings.PORTFOLIO_MAX_ATTEMPTS} times" in run.error


@pytest.mark.django_db
def test_the_sweep_reenqueues_the_pending_chunks_of_a_run_whose_messages_were_lost(champion):
    """A run with no live lease and pending chunks (broker down at commit) has them sent again."""
    portfolio(champion, 6)
    broker_messages()
    run = start(chunk_size=3)  # in this test's transaction nothing was sent: as if the broker was down
    run.chunks.update(enqueued_at=timezone.now() - timedelta(hours=1))
    requeue_portfolio_chunks()
    sent = sorted(broker_messages())
    assert sent == [("scoring.portfolio.rescore_chunk", f"({pk},)") for pk in run.chunks.values_list("pk", flat=True)]


# --- refusals -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_run_without_a_champion_fails_with_a_clear_message(reference_data):
    """No champion: the command says what to do and nothing is started."""
    with pytest.raises(CommandError, match=r"No champion model for Company \(B2B\).*train_model"):
        call_command("rescore_portfolio", stdout=io.StringIO())
    assert not PortfolioRun.objects.exists()


@pytest.mark.django_db
def test_one_run_at_a_time(champion):
    """A second run while one is going is refused by the database's constraint, with the running run named."""
    portfolio(champion, 2)
    run = start()
    with pytest.raises(CommandError, match=f"already running \\(run {run.pk}\\)"):
        call_command("rescore_portfolio", stdout=io.StringIO())


# --- with a real worker -------------------------------------------------------------------------------


@pytest.fixture
def portfolio_worker_env(monkeypatch) -> None:
    """Settings the worker process reads at start: a short lease and a sweep every second."""
    monkeypatch.setenv("PORTFOLIO_LEASE_SECONDS", "3")
    monkeypatch.setenv("PORTFOLIO_SWEEP_SECONDS", "1")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_command_waits_for_the_workers_and_reports_stages_rows_per_second_and_memory(
    champion, portfolio_worker_env, celery_worker_process
):
    """`rescore_portfolio --wait` follows a real worker to the end; --json gives the same figures as data."""
    portfolio(champion, 9)
    out = io.StringIO()
    call_command("rescore_portfolio", "--chunk-size", "4", "--wait", "--timeout", "120", stdout=out)
    text = out.getvalue()
    assert "9 companies in 3 chunks" in text, text
    assert "9 companies re-scored" in text and "companies/s" in text
    for stage in ("read", "features", "predict", "explain", "write"):
        assert f"  {stage} " in text
    assert "peak RSS" in text and "Done." in text

    out = io.StringIO()
    call_command("rescore_portfolio", "--wait", "--json", "--timeout", "120", stdout=out)
    figures = json.loads(out.getvalue().strip().splitlines()[-1])
    assert figures["status"] == "done" and figures["rows"] == 9 and figures["chunks_done"] == figures["chunks"] == 1
    assert figures["peak_rss_mb"] > 0 and set(figures["stage_seconds"]) >= {"read", "write"}
    assert CompanyScore.objects.filter(run_id=figures["run"]).count() == 9


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_chunk_held_by_a_dead_worker_is_done_once_by_a_live_one(
    champion, portfolio_worker_env, celery_worker_process
):
    """A chunk claimed by a worker that then died is taken over after its lease: every company scored once."""
    portfolio(champion, 8)
    with transaction.atomic():
        run = runs.portfolio_run_start(chunk_size=4, system="tests")
        dead = run.chunks.order_by("sequence").first()
        runs.portfolio_chunk_claim(chunk_id=dead.pk, worker="dead:1")
        PortfolioChunk.objects.filter(pk=dead.pk).update(lease_until=timezone.now() + timedelta(seconds=3))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status != PortfolioRun.Status.RUNNING:
            break
        time.sleep(0.5)
    assert run.status == PortfolioRun.Status.DONE, celery_worker_process.log_path.read_text()[-3000:]
    dead.refresh_from_db()
    assert dead.attempts == 2 and dead.worker != "dead:1"
    assert CompanyScore.objects.filter(run=run).count() == 8
    assert CompanyScore.objects.filter(run=run).values("company").distinct().count() == 8


@pytest.mark.parametrize("scope", [PortfolioRun.Scope.PORTFOLIO, PortfolioRun.Scope.MONITORED])
def test_the_chunk_read_aggregates_the_events_once_whatever_the_statistics(db, scope):
    """On PostgreSQL the events CTE is MATERIALIZED: stale statistics cannot make it run once per company.

    A fresh test database has no statistics at all, the case that made a daily run 100x slower.
    """
    from django.db import connection

    from scoring.portfolio.compute import _read_sql

    params = {"lo": 1, "hi": 10**9, "segment": "b2b", "since": timezone.localdate(), "today": timezone.localdate()}
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":  # SQLite plans it its own way: the statement must still run
            cursor.execute("EXPLAIN QUERY PLAN " + _read_sql(scope), {**params, "run": 0})
            assert cursor.fetchall()
            return
        cursor.execute("EXPLAIN " + _read_sql(scope), {**params, "run": 0})
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "CTE events" in plan, plan
