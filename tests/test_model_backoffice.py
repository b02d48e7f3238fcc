"""Model governance in the back-office: what a senior analyst sees and decides, what auditors read.

The models page shows, per segment, the champion, the challenger compared with it on the same out-of-time
holdout (metrics with intervals, calibration by band, the promotion gates), the retraining runs with their
progress, drift and back-testing. A senior analyst approves a challenger whose gates passed (a note says
why), rejects one, rolls back to the previous champion, starts a retraining. Auditors and admins read
every page and change nothing; analysts and people without a role see none of it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from dossiers.models import Company, Dossier, Outcome
from dossiers.outcomes import outcome_record
from riskoffice.audit import Actor
from riskoffice.models import AuditEvent
from scoring.model import engine
from scoring.model.comparison import compare_on_holdout
from scoring.model.registry import model_register
from scoring.model.synthetic import generate_portfolio
from scoring.models import DriftCheck, ModelVersion, RetrainingRun
from scoring.selectors import challenger_for, champion_for
from tests.conftest import PASSWORD, login, pass_second_factor, trained_once
from tests.test_backoffice import scored_dossier

pytestmark = pytest.mark.django_db

MODELS = "/scoring/models/"


def holdout_comparison(champion: ModelVersion, *, champion_trained_to: str | None = None) -> dict:
    """The comparison a retraining stores: both models on the same synthetic out-of-time holdout."""
    portfolio = generate_portfolio(600, seed=77)
    rows = [company.features() for company, _, _ in portfolio]
    labels = [int(defaulted) for _, _, defaulted in portfolio]
    dates = [f"2025-{1 + i * 12 // len(rows):02d}-15T00:00:00+00:00" for i in range(len(rows))]
    return compare_on_holdout(
        champion=engine.model_load(champion),
        challenger=engine.model_from_trained(trained_once()),
        rows=rows,
        labels=labels,
        dates=dates,
        segment="b2b",
        champion_label=champion.label,
        champion_trained_to=champion_trained_to,
        resamples=50,
    )


def make_challenger(champion: ModelVersion, comparison: dict) -> ModelVersion:
    return model_register(
        segment="b2b",
        trained=trained_once(),
        trained_by="retraining run",
        promote=False,
        status=ModelVersion.Status.CHALLENGER,
        comparison=comparison,
    )


@pytest.fixture
def challenger(champion) -> ModelVersion:
    """A challenger whose comparison with the champion passed every gate."""
    comparison = holdout_comparison(champion)
    assert comparison["passed"], comparison["gates"]
    return make_challenger(champion, comparison)


@pytest.fixture
def failing_challenger(champion, settings) -> ModelVersion:
    """A challenger compared on a holdout with too few defaults to judge it: the holdout gate fails."""
    settings.MODEL_GATE_MIN_DEFAULTS = 100_000
    comparison = holdout_comparison(champion)
    assert not comparison["passed"]
    return make_challenger(champion, comparison)


def page(client) -> str:
    response = client.get(MODELS)
    assert response.status_code == 200
    return response.content.decode()


def followed(response) -> str:
    """The page a POST redirected to, with its flash messages."""
    assert response.status_code == 302, response.content[:500]
    return response.client.get(response["Location"]).content.decode()


# --- the page --------------------------------------------------------------------------------------------------


def test_the_page_shows_the_champion_and_the_challenger_compared_on_the_same_holdout(client, senior, challenger):
    login(client, senior)

    html = page(client)

    assert 'data-testid="champion-b2b"' in html and "b2b-v1" in html
    assert 'data-testid="challenger-b2b"' in html and challenger.label in html
    for metric in ("auc", "gini", "ks", "brier"):
        assert f'data-testid="metric-{metric}"' in html
    assert "Difference (challenger − champion)" in html
    assert 'data-testid="calibration-b2b"' in html
    assert 'data-testid="gate-auc_not_worse"' in html and "✓ passed" in html
    assert f"Approve: {challenger.label} becomes the champion" in html
    assert 'data-testid="champion-saw-b2b"' not in html
    assert 'data-testid="no-challenger-b2c"' in html


def test_the_page_shows_the_champions_training_window_as_dates(client, auditor, champion):
    champion.training_window = {"from": "2024-01-01T09:30:00.123456+00:00", "to": "2025-06-23T15:45:21.991056+00:00"}
    champion.save(update_fields=["training_window"])
    login(client, auditor)

    html = page(client)

    assert "2025-06-23T15:45" not in html  # the stored ISO timestamp, not shown as it is
    window = champion.training_window
    first, last = (date_format(datetime.fromisoformat(window[end]).date(), "DATE_FORMAT") for end in ("from", "to"))
    assert f"<dd>{first} → {last}</dd>" in html


def test_the_gates_are_told_in_the_readers_language_with_the_verdicts_stored(client, auditor, challenger):
    """A retraining stores its gates in the worker's language; the page tells them again in the reader's."""
    stored = {gate["name"]: gate for gate in challenger.comparison["gates"]}
    login(client, auditor)

    french = client.get(MODELS, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    english = client.get(MODELS, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    holdout = challenger.comparison["holdout"]
    assert f"L&#x27;échantillon de test compte {holdout['rows']} dossiers et {holdout['defaults']} défauts" in french
    assert "AUC du challenger moins celle de b2b-v1" in french and "Challenger minus" not in french
    assert stored["auc_not_worse"]["detail"].split(":")[0] in english  # the stored sentence, in English
    assert french.count("✓") == english.count("✓") == sum(gate["passed"] for gate in stored.values())


def test_the_page_warns_when_the_champion_was_trained_on_part_of_the_holdout(client, senior, champion):
    comparison = holdout_comparison(champion, champion_trained_to="2025-03-31T23:59:59+00:00")
    make_challenger(champion, comparison)
    login(client, senior)

    html = page(client)

    saw = comparison["holdout"]["champion_saw"]
    assert saw > 0
    assert 'data-testid="champion-saw-b2b"' in html
    assert f"The champion was trained on {saw} of the {comparison['holdout']['rows']} holdout dossiers" in html


def test_the_page_shows_the_latest_drift_check_and_its_history(client, senior, champion, settings):
    today = timezone.localdate()
    for days_ago, psi in ((2, 0.04), (1, 0.31)):
        DriftCheck.objects.create(
            segment="b2b",
            model_version=champion,
            day=today - timedelta(days=days_ago),
            window_days=30,
            scores_compared=400,
            psi_score=psi,
            psi_features={"revenue": psi, "sector": 0.01},
            psi_max=psi,
            psi_max_of="revenue",
            alerted=psi > settings.MODEL_PSI_ALERT,
        )
    login(client, senior)

    html = page(client)

    assert 'data-testid="drift-b2b"' in html and "0.310" in html
    assert 'data-testid="drift-alert-b2b"' in html and "drift alert: revenue at 0.310" in html
    assert 'data-testid="drift-features-b2b"' in html and "<code>revenue</code>" in html
    assert html.count('<td class="bar">') == 2  # one bar per day checked
    assert 'data-testid="no-drift-b2c"' in html


def test_the_page_back_tests_the_predicted_pd_against_matured_outcomes(client, auditor, analyst, marketplace, champion):
    dossier = scored_dossier(marketplace)
    outcome_record(dossier=dossier, status="defaulted", occurred_on=timezone.localdate(), actor=Actor(user=analyst))
    login(client, auditor)

    html = page(client)

    band = dossier.scores.get().band
    assert 'data-testid="backtest-b2b"' in html and f'<th scope="row">{band}</th>' in html
    assert "1 dossiers with a matured outcome (1 defaults)" in html
    assert 'data-testid="overrides-b2b"' in html and "Not overridden" in html
    assert 'data-testid="no-backtest-b2c"' in html


def test_the_page_says_why_outcomes_without_a_stored_score_are_not_back_tested(client, auditor, champion):
    """An imported history (features and outcomes, no score) trains models but holds no predicted PD to check."""
    company = Company.objects.create(siren="552100554", vat="FR96552100554")
    dossier = Dossier.objects.create(company=company, requested_amount=1000)
    Outcome.objects.create(dossier=dossier, status="defaulted", occurred_on=timezone.localdate())
    login(client, auditor)

    html = page(client)

    assert 'data-testid="no-backtest-b2b"' in html
    assert "Left out: 1 outcomes of dossiers without a stored score" in html


# --- approving, rejecting, rolling back --------------------------------------------------------------------------


def test_approving_a_challenger_that_passed_its_gates_makes_it_the_champion(client, senior, champion, challenger):
    login(client, senior)

    response = client.post(reverse("scoring:model-approve", args=[challenger.pk]), {"note": "Better on Q3 files."})

    assert f"{challenger.label} is now the champion of the Company (B2B) segment." in followed(response)
    assert champion_for("b2b").pk == challenger.pk
    champion.refresh_from_db()
    assert champion.status == ModelVersion.Status.RETIRED
    challenger.refresh_from_db()
    assert challenger.decided_by == senior and challenger.decision_note == "Better on Q3 files."
    assert AuditEvent.objects.filter(action="model.challenger_approved", object_id=str(challenger.pk)).exists()


def test_a_challenger_that_failed_a_gate_cannot_be_approved_and_the_page_says_why(client, senior, failing_challenger):
    login(client, senior)

    html = page(client)
    response = client.post(reverse("scoring:model-approve", args=[failing_challenger.pk]), {"note": "Ship it."})

    assert 'data-testid="approve-why-b2b"' in html and "Enough defaults in the holdout" in html
    assert "disabled" in html.split('data-testid="approve-b2b"')[1].split("</form>")[0]
    shown = followed(response)
    assert "did not pass the promotion gates (holdout_defaults)" in shown and "flash-error" in shown
    assert "Traceback" not in shown
    failing_challenger.refresh_from_db()
    assert failing_challenger.status == ModelVersion.Status.CHALLENGER
    assert champion_for("b2b").label == "b2b-v1"


def test_a_decision_without_a_note_is_refused_and_the_form_says_so(client, senior, challenger):
    login(client, senior)

    response = client.post(reverse("scoring:model-approve", args=[challenger.pk]), {"note": "  "})

    assert response.status_code == 400
    html = response.content.decode()
    assert "Say why: a note is required." in html and 'aria-invalid="true"' in html
    assert challenger_for("b2b").pk == challenger.pk


def test_rejecting_a_challenger_keeps_the_champion(client, senior, champion, challenger):
    login(client, senior)

    response = client.post(reverse("scoring:model-reject", args=[challenger.pk]), {"note": "Unstable on B2B."})

    assert f"{challenger.label} was rejected; the Company (B2B) champion stays in place." in followed(response)
    challenger.refresh_from_db()
    assert challenger.status == ModelVersion.Status.REJECTED
    assert champion_for("b2b").pk == champion.pk


def test_a_decision_on_a_version_that_is_no_longer_the_challenger_is_refused(client, senior, challenger):
    login(client, senior)
    client.post(reverse("scoring:model-reject", args=[challenger.pk]), {"note": "No."})

    response = client.post(reverse("scoring:model-approve", args=[challenger.pk]), {"note": "Yes after all."})

    assert f"{challenger.label} is not the challenger" in followed(response)
    challenger.refresh_from_db()
    assert challenger.status == ModelVersion.Status.REJECTED


def test_rolling_back_brings_the_previous_champion_back(client, senior, champion, challenger):
    login(client, senior)
    client.post(reverse("scoring:model-approve", args=[challenger.pk]), {"note": "Better."})

    html = page(client)
    response = client.post(
        reverse("scoring:model-rollback", args=["b2b"]), {"note": "Complaints on B.", "champion": challenger.pk}
    )

    assert f"Roll back to {champion.label}" in html
    assert f"A rollback retires {challenger.label} and brings back {champion.label} as the champion." in html
    assert f"Rolled back: {champion.label} is the champion of the Company (B2B) segment again." in followed(response)
    assert champion_for("b2b").pk == champion.pk


def test_a_rollback_from_a_page_shown_before_the_champion_changed_is_refused(client, senior, champion, challenger):
    login(client, senior)
    client.post(reverse("scoring:model-approve", args=[challenger.pk]), {"note": "Better."})

    # The rollback form was shown while b2b-v1 was still the champion.
    response = client.post(reverse("scoring:model-rollback", args=["b2b"]), {"note": "Undo.", "champion": champion.pk})

    assert "The champion changed since this page was shown: nothing was rolled back." in followed(response)
    assert champion_for("b2b").pk == challenger.pk


def test_there_is_nothing_to_roll_back_to_without_a_previous_champion(client, senior, champion):
    login(client, senior)

    html = page(client)
    response = client.post(reverse("scoring:model-rollback", args=["b2b"]), {"note": "Undo.", "champion": champion.pk})

    assert "No previous champion to roll back to." in html
    assert "No previous champion of this segment to roll back to." in followed(response)
    assert champion_for("b2b").pk == champion.pk


# --- retraining --------------------------------------------------------------------------------------------------


def test_starting_a_retraining_queues_a_run_that_the_page_follows(client, senior, champion):
    login(client, senior)

    response = client.post(reverse("scoring:model-retrain", args=["b2b"]))

    assert "Retraining of the Company (B2B) model queued" in followed(response)
    run = RetrainingRun.objects.get(segment="b2b")
    assert run.status == RetrainingRun.Status.QUEUED and run.started_by == senior
    assert run.trigger == RetrainingRun.Trigger.MANUAL
    html = page(client)
    progress = reverse("scoring:retraining-progress", args=[run.pk])
    assert f'hx-get="{progress}"' in html and 'hx-trigger="every 2s"' in html
    assert "A retraining is already queued or running." in html  # the button is disabled meanwhile


def test_the_progress_partial_shows_the_stage_while_running_and_stops_polling_when_done(client, senior, champion):
    login(client, senior)
    client.post(reverse("scoring:model-retrain", args=["b2b"]))
    run = RetrainingRun.objects.get(segment="b2b")
    url = reverse("scoring:retraining-progress", args=[run.pk])

    RetrainingRun.objects.filter(pk=run.pk).update(status="running", stage="Training the challenger", progress=40)
    running = client.get(url, HTTP_HX_REQUEST="true")
    RetrainingRun.objects.filter(pk=run.pk).update(status="failed", progress=40, error="Only 12 matured outcomes.")
    ended = client.get(url, HTTP_HX_REQUEST="true")
    full = client.get(url).content.decode()

    assert "Training the challenger" in running.content.decode() and 'value="40"' in running.content.decode()
    assert "hx-get" in running.content.decode() and "<html" not in running.content.decode()  # the fragment alone
    assert "HX-Refresh" not in running
    assert "hx-get" not in ended.content.decode() and "Only 12 matured outcomes." in ended.content.decode()
    assert ended["HX-Refresh"] == "true"  # the page reloads to show what the run ended with
    assert "<html" in full and "Retraining" in full


def test_a_second_retraining_of_a_segment_is_refused_while_one_is_active(client, senior, champion):
    login(client, senior)
    client.post(reverse("scoring:model-retrain", args=["b2b"]))

    response = client.post(reverse("scoring:model-retrain", args=["b2b"]))

    assert "already queued or running" in followed(response)
    assert RetrainingRun.objects.filter(segment="b2b").count() == 1


# --- the model card -----------------------------------------------------------------------------------------------


def test_the_model_card_is_shown_and_exported_as_markdown_and_json(client, auditor, challenger):
    login(client, auditor)

    html = client.get(reverse("scoring:model-detail", args=[challenger.pk])).content.decode()
    markdown = client.get(reverse("scoring:model-card-md", args=[challenger.pk]))
    exported = client.get(reverse("scoring:model-card-json", args=[challenger.pk]))

    assert f"Model card {challenger.label}" in html
    for section in ("identity", "intended-use", "data", "features", "metrics", "comparison", "limits"):
        assert f'data-testid="card-{section}"' in html
    assert 'data-testid="comparison-card"' in html and 'data-testid="gates-card"' in html
    assert "Probability of default of a French company" in html  # the intended use
    assert markdown.status_code == 200 and markdown["Content-Type"].startswith("text/markdown")
    assert f'filename="model-card-{challenger.label}.md"' in markdown["Content-Disposition"]
    assert markdown.content.decode().startswith(f"# Model card: {challenger.label}")
    assert exported.status_code == 200 and exported["Content-Type"] == "application/json"
    assert f'filename="model-card-{challenger.label}.json"' in exported["Content-Disposition"]
    card = json.loads(exported.content)
    assert card["identity"]["label"] == challenger.label and card["comparison"]["passed"] is True


def test_a_first_models_card_compares_it_with_no_champion(client, auditor, champion):
    """The first model of a segment is validated on its holdout alone: no champion column to name."""
    portfolio = generate_portfolio(600, seed=77)
    comparison = compare_on_holdout(
        champion=None,
        challenger=engine.model_load(champion),
        rows=[company.features() for company, _, _ in portfolio],
        labels=[int(defaulted) for _, _, defaulted in portfolio],
        dates=["2025-06-15T00:00:00+00:00"] * len(portfolio),
        segment="b2b",
        resamples=20,
    )
    champion.comparison = comparison
    champion.save(update_fields=["comparison"])
    login(client, auditor)

    html = client.get(reverse("scoring:model-detail", args=[champion.pk])).content.decode()

    assert 'data-testid="comparison-card"' in html
    assert "No champion (first model)" in html and "Champion champion" not in html


def test_an_unknown_model_version_is_not_found(client, senior, champion):
    login(client, senior)

    assert client.get(reverse("scoring:model-detail", args=[987654])).status_code == 404
    assert client.get(reverse("scoring:model-card-md", args=[987654])).status_code == 404


# --- who sees and does what --------------------------------------------------------------------------------------


def test_auditors_and_admins_read_the_page_without_any_form_to_act(client, auditor, admin_user, challenger):
    for reader in (auditor, admin_user):
        client.logout()
        login(client, reader)

        html = page(client)

        assert challenger.label in html and 'data-testid="nav-models"' in html
        assert 'data-testid="approve-b2b"' not in html and 'data-testid="retrain-b2b"' not in html
        refused = client.post(reverse("scoring:model-approve", args=[challenger.pk]), {"note": "Mine."})
        assert refused.status_code == 403
    assert challenger_for("b2b").pk == challenger.pk


def test_analysts_and_people_without_a_role_see_neither_the_page_nor_its_link(client, analyst, outsider, champion):
    for user in (analyst, outsider):
        client.logout()
        login(client, user)

        assert client.get(MODELS).status_code == 403
        assert client.post(reverse("scoring:model-retrain", args=["b2b"])).status_code == 403
    assert not RetrainingRun.objects.exists()
    assert 'data-testid="nav-models"' not in client.get(reverse("scoring:policy")).content.decode()  # the analyst


# --- in a browser ------------------------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_senior_analyst_starts_a_retraining_watches_it_run_and_approves_its_challenger(
    live_server, browser_page, senior, champion, monkeypatch
):
    from playwright.sync_api import expect

    from scoring.model.tasks import retrain_model

    # No worker here: the test moves the run along as the worker would.
    monkeypatch.setattr(retrain_model, "delay", lambda *args, **kwargs: None)
    page = browser_page
    page.goto(f"{live_server.url}{MODELS}")
    page.get_by_label("Username").fill(senior.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    pass_second_factor(page, senior)
    page.goto(f"{live_server.url}{MODELS}")

    page.get_by_test_id("retrain-b2b").click()
    expect(page.get_by_role("status")).to_contain_text("Retraining of the Company (B2B) model queued")
    expect(page.get_by_test_id("retraining-status")).to_have_text("Queued")
    run = RetrainingRun.objects.get(segment="b2b")

    # The progress fragment refreshes by itself while the run is active.
    RetrainingRun.objects.filter(pk=run.pk).update(status="running", stage="Training the challenger", progress=40)
    expect(page.get_by_test_id("retraining-stage")).to_have_text("Training the challenger")
    challenger = make_challenger(champion, holdout_comparison(champion))
    RetrainingRun.objects.filter(pk=run.pk).update(status="succeeded", progress=100, challenger=challenger)
    # When the run ends, the page reloads itself and shows the challenger it made.
    expect(page.get_by_test_id("gates-b2b")).to_contain_text("AUC not worse beyond noise")
    page.locator("#approve-b2b-note").fill("Better on the latest quarter.")
    page.get_by_role("button", name=f"Approve: {challenger.label} becomes the champion").click()
    expect(page.get_by_role("status")).to_contain_text(f"{challenger.label} is now the champion")
    expect(page.get_by_test_id("champion-b2b")).to_contain_text(challenger.label)
    assert champion_for("b2b").pk == challenger.pk
    assert page.broken_resources == []
