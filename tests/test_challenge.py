"""Challenging a score and retrying a failed dossier, over HTTP as the analyst: each re-score is a new version.

An analyst disputes the recommendation, corrects inputs (the amount, a statement, data points read off a
document) with a justification and the document's reference; the dossier is re-scored at once as the next
version, the earlier ones stay, the decision in force becomes the new recommendation. A failed dossier can
be retried. Every step is audited and sent to the partner.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.models import WebhookDelivery, WebhookEndpoint
from dossiers.batch import dossiers_record_assessments, dossiers_score_batch
from dossiers.challenge import dossier_challenge
from dossiers.models import Challenge, Dossier, Override
from dossiers.services import dossier_create, dossier_create_individual, dossier_score
from riskoffice.audit import Actor
from riskoffice.models import AuditEvent
from scoring.assessment import assess_many
from scoring.model.registry import model_register
from scoring.model.synthetic import siren_from_number
from scoring.models import FinancialStatement, ModelVersion, Score
from scoring.selectors import champion_for
from tests.conftest import _user, login, trained_once

pytestmark = pytest.mark.django_db

SIREN = "552100554"
NO_ACCOUNTS_SIREN = siren_from_number(50_000_002)  # its sandbox profile has no published accounts
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


# --- the dossiers and who looks at them ----------------------------------------------------------------


@pytest.fixture
def endpoint(marketplace) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        partner=marketplace.partner, url="https://hooks.pay-later.example/r", secret="whsec_x"
    )


def scored(marketplace, siren: str = SIREN, *, tokens: list[str] | None = None, amount: str = "25000") -> Dossier:
    dossier = dossier_create(
        partner=marketplace.partner,
        siren=siren,
        requested_amount=Decimal(amount),
        bank_tokens=["tok"] if tokens is None else tokens,
        actor=Actor(client=marketplace.api_client),
    )
    assert dossier_score(dossier_id=dossier.pk) is not None
    dossier.refresh_from_db()
    return dossier


@pytest.fixture
def dossier(champion, marketplace, endpoint) -> Dossier:
    return scored(marketplace)


@pytest.fixture
def b2c_champion(reference_data) -> ModelVersion:
    return champion_for("b2c") or model_register(
        segment="b2c", trained=trained_once("b2c"), trained_by="tests", promote=True
    )


def challenge_url(dossier) -> str:
    return f"/dossiers/{dossier.pk if hasattr(dossier, 'pk') else dossier}/challenge"


def retry_url(dossier) -> str:
    return f"/dossiers/{dossier.pk if hasattr(dossier, 'pk') else dossier}/retry"


def page(client, dossier: Dossier) -> str:
    response = client.get(f"/dossiers/{dossier.pk}/")
    assert response.status_code == 200
    return response.content.decode()


JUSTIFIED = {"justification": "The 2025 accounts were not on file.", "source_reference": "Liasse fiscale 2025"}


def versions(dossier: Dossier) -> list[tuple[int, str]]:
    return list(Score.objects.filter(dossier=dossier).order_by("version").values_list("version", "trigger"))


def actions(dossier: Dossier) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_type="dossiers.dossier", object_id=str(dossier.pk))
        .order_by("at", "id")
        .values_list("action", flat=True)
    )


# --- who may challenge and retry -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "expected"),
    [("anonymous", 302), ("outsider", 403), ("auditor", 403), ("analyst", 400), ("senior", 400)],
)
@pytest.mark.parametrize("url", [challenge_url, retry_url], ids=["challenge", "retry"])
def test_only_analysts_and_senior_analysts_may_challenge_or_retry(client, request, dossier, actor, expected, url):
    """Sent empty: a 400 tells "let in, the form (or the dossier's state) said no" from "kept out"."""
    if actor != "anonymous":
        login(client, request.getfixturevalue(actor))

    response = client.post(url(dossier), {})

    assert response.status_code == expected
    if actor == "anonymous":
        assert response["Location"].startswith("/login/")
    assert versions(dossier) == [(1, "application")]
    assert Challenge.objects.count() == 0
    assert Dossier.objects.get(pk=dossier.pk).status == "scored"


@pytest.mark.parametrize("url", [challenge_url, retry_url], ids=["challenge", "retry"])
def test_an_unknown_or_malformed_dossier_is_a_404(client, analyst, reference_data, url):
    login(client, analyst)
    assert client.post(url(UNKNOWN_ID), {**JUSTIFIED, "requested_amount": "1000"}).status_code == 404
    assert client.post(url("not-a-uuid"), {**JUSTIFIED, "requested_amount": "1000"}).status_code == 404


def test_the_auditor_sees_the_history_but_no_challenge_form(client, auditor, analyst, dossier):
    login(client, analyst)
    client.post(challenge_url(dossier), {**JUSTIFIED, "requested_amount": "40000"})
    client.logout()
    login(client, auditor)

    html = page(client, dossier)

    assert 'data-testid="score-history"' in html
    assert 'data-testid="challenge-form"' not in html


# --- a challenge re-scores as a new version --------------------------------------------------------------


def test_a_challenge_creates_the_next_version_keeps_the_old_one_and_puts_the_new_recommendation_in_force(
    client, analyst, dossier
):
    first = Score.objects.get(dossier=dossier)
    login(client, analyst)

    response = client.post(challenge_url(dossier), {**JUSTIFIED, "requested_amount": "400000"})

    assert response.status_code == 302
    assert versions(dossier) == [(1, "application"), (2, "challenge")]
    challenge = Challenge.objects.get()
    new = Score.objects.get(dossier=dossier, version=2)
    assert new.challenge == challenge and challenge.raised_by == analyst
    assert challenge.corrections == {"requested_amount": {"before": "25000.00", "after": "400000.00"}}
    kept = Score.objects.get(pk=first.pk)
    assert (kept.version, kept.score, kept.decision, kept.snapshot_id) == (
        1,
        first.score,
        first.decision,
        first.snapshot_id,
    )
    assert new.snapshot.features["amount_to_revenue"] > first.snapshot.features["amount_to_revenue"]
    dossier.refresh_from_db()
    assert dossier.status == "scored" and dossier.requested_amount == Decimal("400000")
    assert dossier.decision == new.decision and not dossier.decision_overridden

    html = client.get(response["Location"]).content.decode()
    assert "Re-scored: version 2" in html
    assert 'data-testid="version-in-force"' in html and "Score version 2 in force" in html
    assert 'data-testid="score-version-2"' in html and 'data-testid="score-version-1"' in html
    assert html.index('data-testid="score-version-2"') < html.index('data-testid="score-version-1"')  # newest first
    assert "The 2025 accounts were not on file." in html and "Liasse fiscale 2025" in html


def test_the_api_and_the_event_carry_the_score_version_and_its_trigger(client, api, analyst, dossier):
    login(client, analyst)
    client.post(challenge_url(dossier), {**JUSTIFIED, "requested_amount": "30000"})

    body = api.get(f"/api/v1/scores/{dossier.pk}").json()

    assert (body["score_version"], body["score_trigger"]) == (2, "challenge")
    completed = WebhookDelivery.objects.filter(event_type="score.completed").order_by("created_at", "pk")
    assert [(d.payload["data"]["score_version"], d.payload["data"]["score_trigger"]) for d in completed] == [
        (1, "application"),
        (2, "challenge"),
    ]


def test_a_corrected_statement_makes_the_statements_missing_banner_go_away(client, analyst, champion, marketplace):
    dossier = scored(marketplace, NO_ACCOUNTS_SIREN)
    first = Score.objects.get(dossier=dossier)
    assert "missing:sandbox.financial_statements" in first.data_flags
    login(client, analyst)
    assert "financial statements (sandbox) missing" in page(client, dossier)

    response = client.post(
        challenge_url(dossier),
        {
            **JUSTIFIED,
            "statement_fiscal_year_end": "2025-12-31",
            "statement_revenue": "420000",
            "statement_net_income": "-38000",
        },
    )

    assert response.status_code == 302
    new = Score.objects.get(dossier=dossier, version=2)
    assert new.data_flags == []
    assert new.snapshot.features["revenue"] == 420_000.0
    assert new.snapshot.features["net_margin"] == pytest.approx(-38_000 / 420_000)
    statement = FinancialStatement.objects.get(company=dossier.company)
    assert (statement.source, statement.supplied_by_user) == ("analyst", analyst)
    challenge = Challenge.objects.get()
    assert challenge.corrections["financial_statement"]["before"] is None
    assert challenge.corrections["financial_statement"]["after"]["revenue"] == "420000.00"
    html = page(client, dossier)
    assert 'data-testid="data-flags"' not in html
    assert "financial statements (sandbox) missing" not in html


def test_a_supplied_data_point_is_used_by_the_re_score_and_by_every_later_scoring(
    client, analyst, champion, marketplace
):
    dossier = scored(marketplace, tokens=[])  # no bank data shared: days in overdraft missing
    first = Score.objects.get(dossier=dossier)
    assert first.snapshot.features["days_overdraft_12m"] is None
    login(client, analyst)

    response = client.post(
        challenge_url(dossier),
        {
            "justification": "Bank statements Jan–Dec 2025 show 45 days in overdraft.",
            "source_reference": "Relevés BNP 2025",
            "feature_days_overdraft_12m": "45",
        },
    )

    assert response.status_code == 302
    second = Score.objects.get(dossier=dossier, version=2)
    assert second.snapshot.features["days_overdraft_12m"] == 45
    assert second.snapshot.provenance["analyst"]["status"] == "ok"
    assert "days_overdraft_12m" in second.snapshot.provenance["analyst"]["detail"]
    assert not any(f["feature"] == "days_overdraft_12m" and f["missing"] for f in second.factors)
    assert Challenge.objects.get().feature_values == {"days_overdraft_12m": 45}
    assert "Missing data: days in overdraft" not in page(client, dossier)

    # A later challenge (of the amount only) still scores with the analyst's 45 days.
    client.post(challenge_url(dossier), {**JUSTIFIED, "requested_amount": "12000"})
    third = Score.objects.get(dossier=dossier, version=3)
    assert third.snapshot.features["days_overdraft_12m"] == 45
    assert third.challenge.corrections == {"requested_amount": {"before": "25000.00", "after": "12000.00"}}


def test_an_individuals_monthly_income_can_be_supplied_and_the_ratios_follow(
    client, analyst, b2c_champion, marketplace
):
    dossier = dossier_create_individual(
        partner=marketplace.partner,
        reference="C-7",
        requested_amount=Decimal("3000"),
        bank_tokens=[],
        actor=Actor(client=marketplace.api_client),
    )
    assert dossier_score(dossier_id=dossier.pk) is not None
    login(client, analyst)
    html = page(client, dossier)
    assert 'name="feature_monthly_income"' in html and 'name="statement_revenue"' not in html

    response = client.post(
        challenge_url(dossier), {**JUSTIFIED, "feature_monthly_income": "2500", "feature_late_repayments_12m": "0"}
    )

    assert response.status_code == 302
    features = Score.objects.get(dossier=dossier, version=2).snapshot.features
    assert features["monthly_income"] == 2500
    assert features["amount_to_income"] == pytest.approx(3000 / (12 * 2500))


# --- what a challenge refuses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"source_reference": "Liasse 2025", "requested_amount": "1000"}, "justification", "needs a justification"),
        ({"justification": "Wrong amount.", "requested_amount": "1000"}, "source_reference", "Name the document"),
        ({"justification": " ", "source_reference": " ", "requested_amount": "1000"}, "justification", ""),
        (JUSTIFIED, None, "Correct at least one input"),
        ({**JUSTIFIED, "requested_amount": "25000"}, None, "Correct at least one input"),  # nothing changes
        ({**JUSTIFIED, "requested_amount": "-5"}, "requested_amount", ""),
        ({**JUSTIFIED, "feature_days_overdraft_12m": "400"}, "feature_days_overdraft_12m", "Cannot be above 366"),
        ({**JUSTIFIED, "feature_days_overdraft_12m": "4.5"}, "feature_days_overdraft_12m", ""),
        ({**JUSTIFIED, "statement_revenue": "420000"}, "statement_fiscal_year_end", "last day of the fiscal year"),
        (
            {**JUSTIFIED, "statement_fiscal_year_end": "2025-12-31", "statement_revenue": "-1"},
            "statement_revenue",
            "Cannot be negative",
        ),
    ],
    ids=[
        "no justification",
        "no source reference",
        "blank justification and source",
        "nothing corrected",
        "the same amount",
        "a negative amount",
        "days in overdraft above a year",
        "a fraction of a day",
        "a statement without its year end",
        "a negative revenue",
    ],
)
def test_a_challenge_missing_its_reasons_or_its_corrections_is_a_400_with_the_form_and_stores_nothing(
    client, analyst, dossier, data, field, message
):
    login(client, analyst)
    statements, events = FinancialStatement.objects.count(), AuditEvent.objects.count()

    response = client.post(challenge_url(dossier), data)

    assert response.status_code == 400
    form = response.context["challenge_form"]
    assert form.errors
    if field:
        assert field in form.errors, form.errors
    assert message in str(form.errors)
    html = response.content.decode()
    assert 'data-testid="challenge-form"' in html and "<details open" in html
    assert Challenge.objects.count() == 0 and versions(dossier) == [(1, "application")]
    assert (FinancialStatement.objects.count(), AuditEvent.objects.count()) == (statements, events)
    assert not WebhookDelivery.objects.filter(event_type="dossier.challenged").exists()
    refreshed = Dossier.objects.get(pk=dossier.pk)
    assert (refreshed.status, refreshed.requested_amount) == ("scored", Decimal("25000"))


def test_a_pending_dossier_cannot_be_challenged(client, analyst, dossier):
    Dossier.objects.filter(pk=dossier.pk).update(status="pending")
    login(client, analyst)

    response = client.post(challenge_url(dossier), {**JUSTIFIED, "requested_amount": "1000"})

    assert response.status_code == 400
    assert "Only a scored dossier can be challenged" in response.content.decode()
    assert Challenge.objects.count() == 0


# --- audit and events ------------------------------------------------------------------------------------


def test_a_challenge_is_audited_with_every_correction_and_sent_to_the_partner_before_the_new_score(
    client, analyst, dossier
):
    login(client, analyst)

    client.post(challenge_url(dossier), {**JUSTIFIED, "requested_amount": "30000", "feature_headcount": "12"})

    assert actions(dossier)[-2:] == ["dossier.challenged", "dossier.rescored"]
    challenge = Challenge.objects.get()
    challenged = AuditEvent.objects.get(action="dossier.challenged")
    assert challenged.actor_user == analyst
    assert challenged.before["requested_amount"] == "25000.00" and challenged.after["requested_amount"] == "30000.00"
    assert challenged.after["headcount"] == 12 and "headcount" in challenged.before
    assert challenged.before["score_version"] == 1
    assert "justification" not in challenged.after  # on the challenge, encrypted; the audit names its id
    assert challenged.after["source_reference"] == JUSTIFIED["source_reference"]
    assert challenged.after["challenge_id"] == challenge.pk
    rescored = AuditEvent.objects.get(action="dossier.rescored")
    assert (rescored.after["score_version"], rescored.after["score_trigger"]) == (2, "challenge")
    assert rescored.after["challenge_id"] == challenge.pk

    deliveries = WebhookDelivery.objects.order_by("created_at", "pk")
    assert [d.event_type for d in deliveries] == ["score.completed", "dossier.challenged", "score.completed"]
    data = deliveries[1].payload["data"]
    assert data == {
        "id": str(dossier.pk),
        "challenge_id": challenge.pk,
        "corrected": ["requested_amount", "headcount"],
        "source_reference": "Liasse fiscale 2025",
        "challenged_at": challenge.created_at.isoformat(),
    }


# --- overrides and a re-score ----------------------------------------------------------------------------


def test_a_re_score_withdraws_the_override_awaiting_approval_and_ends_an_override_in_force(
    client, analyst, senior, dossier
):
    other = "refuse" if dossier.decision != "refuse" else "accept"
    Override.objects.create(
        dossier=dossier, from_decision=dossier.decision, to_decision=other, reason="Final one.", decided_by=senior
    )
    Dossier.objects.filter(pk=dossier.pk).update(decision=other, decision_overridden=True)
    awaiting = Override.objects.create(
        dossier=dossier,
        from_decision=other,
        to_decision=dossier.decision,
        reason="Waiting for four eyes.",
        decided_by=analyst,
        status="pending",
    )
    colleague = _user("bob.analyst", "analyst")
    login(client, colleague)

    client.post(challenge_url(dossier), {**JUSTIFIED, "requested_amount": "26000"})

    awaiting.refresh_from_db()
    assert awaiting.status == "withdrawn" and awaiting.reviewed_by is None
    withdrawn = AuditEvent.objects.get(action="dossier.override_withdrawn")
    assert withdrawn.actor_user == colleague
    assert withdrawn.before["override_id"] == awaiting.pk and withdrawn.after["status"] == "withdrawn"
    dossier.refresh_from_db()
    new = Score.objects.get(dossier=dossier, version=2)
    assert (dossier.decision, dossier.decision_overridden) == (new.decision, False)
    assert Override.objects.filter(status="final").count() == 1  # the record of the past override stays


# --- retry -----------------------------------------------------------------------------------------------


@pytest.fixture
def failed(reference_data, marketplace, endpoint) -> Dossier:
    """A dossier that failed: there was no champion model when it was scored."""
    dossier = dossier_create(
        partner=marketplace.partner,
        siren=SIREN,
        requested_amount=Decimal("25000"),
        bank_tokens=["tok"],
        actor=Actor(client=marketplace.api_client),
    )
    assert dossier_score(dossier_id=dossier.pk) is None
    dossier.refresh_from_db()
    assert dossier.status == "failed"
    return dossier


def test_a_failed_dossier_shows_a_retry_button_and_a_retry_scores_it(client, analyst, failed, champion):
    login(client, analyst)
    assert 'data-testid="retry-form"' in page(client, failed)
    Dossier.objects.filter(pk=failed.pk).update(attempts=4)

    response = client.post(retry_url(failed))

    assert response.status_code == 302
    failed.refresh_from_db()
    assert failed.status == "scored" and failed.status_detail == "" and failed.attempts == 1
    assert versions(failed) == [(1, "retry")]
    assert actions(failed)[-2:] == ["dossier.retried", "dossier.rescored"]
    retried = AuditEvent.objects.get(action="dossier.retried")
    assert retried.actor_user == analyst
    assert retried.before["status"] == "failed" and retried.before["attempts"] == 4
    assert "No champion model" in retried.before["status_detail"]
    completed = WebhookDelivery.objects.get(event_type="score.completed")
    assert completed.payload["data"]["score_trigger"] == "retry"
    assert "Re-scored: version 1" in client.get(response["Location"]).content.decode()


def test_a_retry_that_cannot_score_now_leaves_the_dossier_pending_for_the_workers(client, analyst, failed):
    login(client, analyst)

    response = client.post(retry_url(failed), follow=True)

    failed.refresh_from_db()
    assert failed.status == "pending" and failed.claimed_until is None
    html = response.content.decode()
    assert "the workers will score it" in html
    assert 'data-testid="pending"' in html


def test_a_scored_dossier_cannot_be_retried(client, analyst, dossier):
    login(client, analyst)

    response = client.post(retry_url(dossier))

    assert response.status_code == 400
    assert "Only a failed dossier can be retried." in response.content.decode()
    assert versions(dossier) == [(1, "application")]


def test_a_challenge_that_cannot_be_scored_now_waits_for_the_workers_who_store_the_next_version(
    client, analyst, dossier, champion
):
    ModelVersion.objects.filter(pk=champion.pk).update(status="retired")
    login(client, analyst)

    response = client.post(challenge_url(dossier), {**JUSTIFIED, "requested_amount": "30000"}, follow=True)

    dossier.refresh_from_db()
    assert dossier.status == "pending"
    html = response.content.decode()
    assert "the workers will score it" in html and "Score version 1 in force" in html
    assert "Re-scoring in progress" in html

    ModelVersion.objects.filter(pk=champion.pk).update(status="champion")
    assert dossiers_score_batch().scored == [dossier.pk]
    new = Score.objects.get(dossier=dossier, version=2)
    assert (new.trigger, new.challenge) == ("challenge", Challenge.objects.get())


# --- the batch keeps its guarantees with versions ---------------------------------------------------------


def test_a_batch_numbers_first_scores_and_re_scores_and_a_duplicate_store_writes_nothing(
    analyst, champion, marketplace
):
    rescored = [scored(marketplace, siren_from_number(51_000_000 + i)) for i in range(3)]
    for dossier in rescored:
        dossier_challenge(
            dossier=dossier, user=analyst, requested_amount=Decimal("9000"), **JUSTIFIED
        )  # back to pending, not scored here
    fresh = [
        dossier_create(
            partner=marketplace.partner,
            siren=siren_from_number(52_000_000 + i),
            requested_amount=Decimal("9000"),
            bank_tokens=[],
            actor=Actor(client=marketplace.api_client),
        )
        for i in range(2)
    ]
    Dossier.objects.update(claimed_until=None)
    assessed = assess_many(list(Dossier.objects.filter(status="pending").select_related("company", "partner")))

    with CaptureQueriesContext(connection) as first:
        assert len(dossiers_record_assessments(assessed)) == 5
    assert dossiers_record_assessments(assessed) == []

    for dossier in rescored:
        assert versions(dossier) == [(1, "application"), (2, "challenge")]
    for dossier in fresh:
        assert versions(dossier) == [(1, "application")]
    assert Score.objects.count() == 8
    assert len(first.captured_queries) <= 15  # bulk writes: no query per dossier
    assert Dossier.objects.filter(status="scored", decision_overridden=False).count() == 5


def test_scored_dossiers_page_shows_the_challenge_form_with_the_values_in_force(client, analyst, dossier):
    login(client, analyst)

    html = page(client, dossier)

    assert 'data-testid="challenge-form"' in html
    assert 'name="statement_revenue"' in html and 'name="feature_days_overdraft_12m"' in html
    assert "In force:" in html
    assert f'action="/dossiers/{dossier.pk}/statement"' not in html  # statements go through a challenge


def test_a_statement_challenge_keeps_the_date_of_the_accounts(client, analyst, dossier):
    login(client, analyst)
    client.post(
        challenge_url(dossier), {**JUSTIFIED, "statement_fiscal_year_end": "2024-12-31", "statement_equity": "1000"}
    )
    statement = FinancialStatement.objects.filter(source="analyst").get()
    assert statement.fiscal_year_end == date(2024, 12, 31) and statement.equity == Decimal("1000")
