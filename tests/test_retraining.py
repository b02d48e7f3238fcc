"""Retraining from outcomes: one run per segment at a time, a time-ordered holdout, a challenger never self-promoted.

A run is queued (by the schedule, new mature outcomes, a senior analyst or ``train_model``) and executed by the
``scoring.model.tasks.retrain_model`` task: the labelled set, the latest MODEL_HOLDOUT_SHARE kept out as the
out-of-time holdout, a challenger trained on the earlier rows and compared with the champion there, registered
with its comparison and PSI reference. The segment's first model becomes the champion at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from io import StringIO

import pytest
from dateutil.relativedelta import relativedelta
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from riskoffice.models import AuditEvent
from scoring.model.registry import model_register
from scoring.model.retraining import GovernanceError, retraining_start
from scoring.model.tasks import drift_check_daily, retrain_model, retrain_scheduled, retrain_sweep
from scoring.models import ModelVersion, RetrainingRun
from scoring.selectors import challenger_for, champion_for

from .conftest import trained_once

pytestmark = pytest.mark.django_db


# --- shared with the promotion, shadow and drift specifications --------------------------------------------------


@pytest.fixture(autouse=True)
def fewer_resamples(settings) -> None:
    """The bootstrap's intervals with 300 resamples instead of 1000: the same verdicts here, in a third of the time."""
    settings.MODEL_BOOTSTRAP_RESAMPLES = 300


def seed_book(companies: int = 2000, seed: int = 5) -> None:
    """A labelled history of matured outcomes (seed_demo): about 4 % defaults, the latest a month old."""
    call_command("seed_demo", "--companies", str(companies), "--seed", str(seed), stdout=StringIO())


def retrain(segment: str = "b2b", trigger: str = RetrainingRun.Trigger.COMMAND) -> RetrainingRun:
    """A run queued, then executed by its Celery task (called in-process: no worker runs in these tests)."""
    run = retraining_start(segment=segment, trigger=trigger, enqueue=False)
    retrain_model(run.pk)
    run.refresh_from_db()
    return run


def run_command(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def book(champion) -> ModelVersion:
    """The champion (trained on another synthetic sample) and a history of 2,000 matured outcomes to retrain on."""
    seed_book()
    return champion


# --- starting a run ---------------------------------------------------------------------------------------------


def test_a_retraining_is_queued_audited_and_its_task_sent_only_after_commit(
    champion, senior, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(retrain_model, "delay", lambda run_id: sent.append(run_id))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = retraining_start(segment="b2b", trigger=RetrainingRun.Trigger.MANUAL, user=senior)
    assert (run.status, run.trigger, run.started_by, run.progress) == ("queued", "manual", senior, 0)
    assert sent == [] and len(callbacks) == 1
    callbacks[0]()
    assert sent == [run.pk]
    event = AuditEvent.objects.get(action="model.retraining_started")
    assert event.actor_user == senior and event.object_id == str(run.pk)


def test_only_a_senior_analyst_starts_a_retraining_by_hand(champion, analyst):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        retraining_start(segment="b2b", trigger=RetrainingRun.Trigger.MANUAL, user=analyst)
    assert not RetrainingRun.objects.exists()


def test_one_run_per_segment_is_queued_or_running_at_a_time(champion, senior):
    first = retraining_start(segment="b2b", trigger=RetrainingRun.Trigger.MANUAL, user=senior, enqueue=False)

    with pytest.raises(GovernanceError, match="already queued or running"):
        retraining_start(segment="b2b", trigger=RetrainingRun.Trigger.SCHEDULE)
    # The database holds the rule too, whoever writes.
    with pytest.raises(IntegrityError), transaction.atomic():
        RetrainingRun.objects.create(segment="b2b", trigger=RetrainingRun.Trigger.SCHEDULE)
    # Another segment is another model.
    assert retraining_start(segment="b2c", trigger=RetrainingRun.Trigger.SCHEDULE, enqueue=False).pk != first.pk
    # Once the first has ended, a new one may start.
    RetrainingRun.objects.filter(pk=first.pk).update(status="failed", finished_at=timezone.now())
    assert retraining_start(segment="b2b", trigger=RetrainingRun.Trigger.SCHEDULE, enqueue=False).status == "queued"


# --- running it -------------------------------------------------------------------------------------------------


def test_a_run_trains_on_the_earlier_rows_and_registers_a_challenger_compared_on_the_latest_ones(book):
    run = retrain()

    assert (run.status, run.progress, run.stage, run.error) == ("succeeded", 100, "Done", "")
    assert run.started_at and run.finished_at and run.heartbeat_at
    assert run.labelled_rows == 2000
    assert (run.labelled["train_rows"], run.labelled["holdout_rows"]) == (1600, 400)
    challenger = run.challenger
    assert challenger.status == "challenger" and challenger == challenger_for("b2b")
    assert champion_for("b2b") == book  # a run never promotes over a champion
    comparison = challenger.comparison
    assert comparison["holdout"]["rows"] == 400
    assert comparison["champion"]["label"] == book.label and comparison["challenger"]["label"] == challenger.label
    assert {gate["name"] for gate in comparison["gates"]} >= {"auc_not_worse", "brier_not_worse", "calibration"}
    # Out of time: the challenger learnt nothing from the holdout it is judged on.
    assert challenger.training_window["to"] < comparison["holdout"]["from"]
    assert challenger.reference["features"] and challenger.reference["score"]
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"model.retraining_started", "model.registered", "model.retraining_succeeded"} <= actions


def test_a_retraining_window_learns_only_the_recent_applications(book, settings):
    """After a drift, older outcomes teach the risk as it was: MODEL_RETRAIN_WINDOW_MONTHS leaves them out."""
    settings.MODEL_RETRAIN_WINDOW_MONTHS = 20
    since = timezone.now() - relativedelta(months=20)

    run = retrain()

    assert run.status == "succeeded", run.error
    older = run.labelled["older_left_out"]
    assert 0 < older < 2000 and run.labelled["rows"] == 2000
    assert run.labelled_rows == run.labelled["window_rows"] == 2000 - older
    assert run.labelled["train_rows"] + run.labelled["holdout_rows"] == 2000 - older
    assert "20 months of applications" in run.labelled["summary"]
    assert datetime.fromisoformat(run.challenger.training_window["from"]) >= since


def test_a_window_shorter_than_the_performance_window_fails_and_says_why(book, settings):
    """Repaid credits mature after 12 months: three months of applications hold none to learn from."""
    settings.MODEL_RETRAIN_WINDOW_MONTHS = 3

    run = retrain()

    assert run.status == "failed" and "Traceback" not in run.error
    assert "The last 3 months of applications (MODEL_RETRAIN_WINDOW_MONTHS) hold" in run.error
    assert "Widen the window: repaid credits mature only after 12 months." in run.error
    assert challenger_for("b2b") is None


def test_the_same_task_twice_trains_once(book):
    run = retrain()
    versions = ModelVersion.objects.count()

    retrain_model(run.pk)  # a duplicate message

    assert ModelVersion.objects.count() == versions
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_a_run_without_enough_labelled_files_fails_with_a_readable_error(champion):
    seed_book(companies=200)  # 160 rows before the holdout: fewer than training needs

    run = retrain()

    assert run.status == "failed" and run.finished_at is not None
    assert "200 matured files: too few to train" in run.error and "Traceback" not in run.error
    assert not ModelVersion.objects.exclude(pk=champion.pk).exists()
    assert AuditEvent.objects.get(action="model.retraining_failed").after["error"] == run.error


def test_a_segment_without_a_champion_gets_its_first_model_as_champion_at_once(reference_data):
    seed_book()

    run = retrain()

    assert run.status == "succeeded"
    assert run.challenger.status == "champion" and run.challenger == champion_for("b2b")
    assert run.challenger.comparison["champion"] is None


def test_a_new_challenger_supersedes_one_still_awaiting_a_decision(book):
    waiting = model_register(
        segment="b2b", trained=trained_once(), trained_by="tests", promote=False, status="challenger"
    )

    run = retrain()

    waiting.refresh_from_db()
    assert waiting.status == "rejected" and waiting.decision_note == f"superseded by v{run.challenger.version}"
    assert challenger_for("b2b") == run.challenger
    assert AuditEvent.objects.filter(action="model.challenger_superseded", object_id=str(waiting.pk)).exists()


# --- when runs start on their own -------------------------------------------------------------------------------


def test_beat_runs_the_monthly_retraining_the_sweep_and_the_daily_drift_check():
    """The schedule as production's beat reads it: the 1st of the month at 03:00 and every day at 04:00, Paris time."""
    from riskoffice import settings as project_settings

    schedule = project_settings.CELERY_BEAT_SCHEDULE
    monthly = schedule["model-retrain-monthly"]
    assert monthly["task"] == retrain_scheduled.name
    assert (monthly["schedule"].day_of_month, monthly["schedule"].hour, monthly["schedule"].minute) == ({1}, {3}, {0})
    assert schedule["model-retrain-sweep"]["task"] == retrain_sweep.name
    drift = schedule["model-drift-check"]
    assert drift["task"] == drift_check_daily.name and (drift["schedule"].hour, drift["schedule"].minute) == ({4}, {0})


def test_the_monthly_task_starts_one_run_per_segment_that_has_a_champion_or_outcomes(champion):
    started = retrain_scheduled()

    assert [RetrainingRun.objects.get(pk=pk).segment for pk in started] == ["b2b"]  # b2c has neither
    assert retrain_scheduled() == []  # already queued: not twice


def test_the_sweep_starts_a_run_once_enough_new_outcomes_have_matured(book, settings):
    settings.MODEL_RETRAIN_MIN_NEW_OUTCOMES = 500

    [pk] = retrain_sweep()  # 2,000 matured outcomes recorded since the champion was trained

    assert RetrainingRun.objects.get(pk=pk).trigger == "outcomes"
    RetrainingRun.objects.filter(pk=pk).update(
        status="succeeded", labelled_rows=2000, labelled={"matured_outcomes": 2000}, finished_at=timezone.now()
    )
    assert retrain_sweep() == []  # none new since that run
    settings.MODEL_RETRAIN_MIN_NEW_OUTCOMES = 0
    RetrainingRun.objects.filter(pk=pk).update(labelled={"matured_outcomes": 0})
    assert retrain_sweep() == []  # 0: never on outcomes


def test_the_sweep_fails_a_run_whose_worker_stopped_and_leaves_a_live_one(champion):
    dead = retraining_start(segment="b2b", trigger=RetrainingRun.Trigger.SCHEDULE, enqueue=False)
    RetrainingRun.objects.filter(pk=dead.pk).update(
        status="running", stage="Training the challenger", heartbeat_at=timezone.now() - timedelta(hours=3)
    )
    live = retraining_start(segment="b2c", trigger=RetrainingRun.Trigger.SCHEDULE, enqueue=False)
    RetrainingRun.objects.filter(pk=live.pk).update(status="running", heartbeat_at=timezone.now())

    retrain_sweep()

    dead.refresh_from_db()
    live.refresh_from_db()
    assert dead.status == "failed" and "stopped" in dead.error and dead.finished_at
    assert live.status == "running"


# --- train_model ------------------------------------------------------------------------------------------------


def test_train_model_with_a_champion_in_place_makes_a_challenger_and_says_who_approves_it(book):
    output = run_command("train_model")

    challenger = challenger_for("b2b")
    assert challenger.version == 2 and champion_for("b2b") == book
    assert RetrainingRun.objects.get().trigger == "command"
    assert "Labelled set: 2000 files" in output
    assert "Out-of-time holdout: 400 files" in output
    assert "Promotion gates:" in output and "auc_not_worse" in output
    assert "b2b-v2 is the challenger: a senior analyst approves it in the back-office." in output


def test_train_model_with_a_run_already_active_says_so(champion):
    retraining_start(segment="b2b", trigger=RetrainingRun.Trigger.SCHEDULE, enqueue=False)
    with pytest.raises(CommandError, match="already queued or running"):
        run_command("train_model")


def test_train_model_csv_with_a_champion_in_place_registers_a_candidate_and_says_so(champion, tmp_path):
    from .test_model_quality import CSV_COLUMNS, book_rows, write_csv

    path = write_csv(tmp_path / "book.csv", [*CSV_COLUMNS, "defaulted"], book_rows(600, seed=37))

    output = run_command("train_model", "--csv", str(path), "--target", "defaulted")

    assert ModelVersion.objects.get(version=2).status == "candidate"
    assert champion_for("b2b") == champion
    assert "Not promoted: b2b-v1 is the champion" in output
