"""Individuals (B2C): scored on 300–850, known only by the partner's internal reference."""

from __future__ import annotations

import itertools
import json
import math
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from alerts.models import NegativeEvent
from dossiers.models import Dossier, Individual, Outcome
from dossiers.services import dossier_create_individual, dossier_score
from riskoffice.audit import Actor
from riskoffice.models import AuditEvent
from scoring.model.features import B2C_FEATURE_NAMES
from scoring.model.registry import model_register
from scoring.model.synthetic import generate_b2c_portfolio, sandbox_individual, true_pd_individual
from scoring.models import FeatureSnapshot, ModelVersion
from scoring.policy.apply import policy_apply
from scoring.policy.scale import SCALES, band_for, score_for
from scoring.selectors import champion_for, policy_current
from scoring.sources.individuals import gather_individual

from .conftest import PASSWORD, obtain_token, trained_once

pytestmark = pytest.mark.django_db

REFERENCE = "CUST-00042"
VALID = {"individual": {"reference": REFERENCE}, "bank_data": ["tok_abc"], "requested_amount": 3000}


@pytest.fixture
def b2c_champion(reference_data) -> ModelVersion:
    return champion_for("b2c") or model_register(
        segment="b2c", trained=trained_once("b2c"), trained_by="tests", promote=True
    )


def _problem_fields(response) -> dict[str, list[str]]:
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    return response.json()["errors"]


def scored(dossier_id) -> Dossier:
    assert dossier_score(dossier_id=dossier_id) is not None
    return Dossier.objects.select_related("individual").get(pk=dossier_id)


# --- creating a B2C dossier through the API ----------------------------------------------------------


def test_a_partner_posts_an_individual_and_gets_a_b2c_dossier_for_its_own_individual(
    api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.post("/api/v1/scores", VALID)
    assert response.status_code == 202, response.content
    dossier = Dossier.objects.select_related("individual").get(pk=response.json()["id"])
    assert dossier.segment == "b2c"
    assert dossier.company is None
    assert dossier.individual.reference == REFERENCE
    assert dossier.individual.partner == api.partner.partner
    assert dossier.requested_amount == Decimal("3000")
    assert dossier.bank_tokens == ["tok_abc"]
    assert len(callbacks) == 1  # scoring is enqueued once the dossier is committed
    created = AuditEvent.objects.get(action="dossier.created", object_id=str(dossier.pk))
    assert created.actor_client == api.partner.api_client
    # The audit row names the individual by id, never by its (encrypted) reference.
    assert created.after["individual_id"] == dossier.individual_id
    assert REFERENCE not in str(created.after)


def test_the_same_reference_is_one_individual_per_partner_and_another_partners_is_another(api, other_partner):
    api.post("/api/v1/scores", VALID)
    api.post("/api/v1/scores", dict(VALID, requested_amount=1200))
    dossier_create_individual(
        partner=other_partner.partner,
        reference=REFERENCE,
        requested_amount=Decimal(500),
        bank_tokens=[],
        actor=Actor(client=other_partner.api_client),
    )
    assert Dossier.objects.filter(segment="b2c").count() == 3
    ours = Individual.objects.get(partner=api.partner.partner)
    theirs = Individual.objects.get(partner=other_partner.partner)
    assert ours.reference == theirs.reference == REFERENCE and ours.pk != theirs.pk
    assert ours.dossiers.count() == 2


@pytest.mark.parametrize("reference", ["a", "A" * 100, "x.y_z:1-2", "0042"])
def test_a_reference_of_one_to_a_hundred_letters_digits_and_dot_underscore_colon_dash_is_accepted(api, reference):
    response = api.post("/api/v1/scores", dict(VALID, individual={"reference": reference}))
    assert response.status_code == 202, response.content
    assert Individual.objects.get().reference == reference


BAD_INDIVIDUALS = [
    ("no reference", {"individual": {}}, "individual.reference"),
    ("empty reference", {"individual": {"reference": ""}}, "individual.reference"),
    ("reference with a space", {"individual": {"reference": "CUST 42"}}, "individual.reference"),
    ("reference with a leading space", {"individual": {"reference": " CUST-42"}}, "individual.reference"),
    ("reference of 101 characters", {"individual": {"reference": "A" * 101}}, "individual.reference"),
    ("reference as a number", {"individual": {"reference": 42}}, "individual.reference"),
    ("reference with an accent", {"individual": {"reference": "CLIENT-é"}}, "individual.reference"),
    ("reference with a slash", {"individual": {"reference": "a/b"}}, "individual.reference"),
    ("reference as null", {"individual": {"reference": None}}, "individual.reference"),
    ("individual not an object", {"individual": REFERENCE}, "individual"),
    ("individual as null", {"individual": None}, "individual"),
    ("a name beside the reference", {"individual": {"reference": REFERENCE, "name": "Jean Dupont"}}, "individual.name"),
    (
        "financial statements for an individual",
        {
            "individual": {"reference": REFERENCE},
            "financial_statements": [{"fiscal_year_end": "2024-12-31", "revenue": 1000}],
        },
        "financial_statements",
    ),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_INDIVIDUALS, ids=[case for case, _, _ in BAD_INDIVIDUALS])
def test_a_bad_individual_gets_a_400_naming_the_field_and_stores_nothing(api, case, body, field):
    errors = _problem_fields(api.post("/api/v1/scores", {"requested_amount": 3000, **body}))
    assert field in errors, errors
    assert Dossier.objects.count() == Individual.objects.count() == 0


def test_a_company_and_an_individual_together_get_a_400_naming_both(api):
    body = dict(VALID, company={"siren": "552100554"})
    response = api.post("/api/v1/scores", body)
    errors = _problem_fields(response)
    assert set(errors) == {"company", "individual"}
    assert "not both" in errors["individual"][0]
    assert "company" in response.json()["detail"] and "individual" in response.json()["detail"]
    assert Dossier.objects.count() == 0


@pytest.mark.parametrize("body", [{"requested_amount": 3000}, {}, {"bank_data": ["t"]}])
def test_neither_a_company_nor_an_individual_gets_a_400_naming_both(api, body):
    errors = _problem_fields(api.post("/api/v1/scores", body))
    assert {"company", "individual"} <= set(errors)
    assert "company (B2B) or an individual (B2C)" in errors["individual"][0]
    if "requested_amount" not in body:
        assert "requested_amount" in errors  # the field errors are all reported at once
    assert Dossier.objects.count() == 0


# --- scoring an individual -----------------------------------------------------------------------------


def test_an_individual_is_scored_on_300_to_850_with_a_band_a_b2c_decision_and_reasons_in_french_and_english(
    api, b2c_champion
):
    dossier = scored(api.post("/api/v1/scores", VALID).json()["id"])
    score = dossier.scores.get()
    assert score.model_version == b2c_champion and b2c_champion.feature_names == B2C_FEATURE_NAMES
    assert 300 <= score.score <= 850
    assert score.score == score_for(score.probability_of_default, "b2c")
    assert score.band == band_for(score.probability_of_default)
    policy = policy_current("b2c")
    assert score.policy_version == policy and policy.label == "b2c-policy-v1"
    expected = policy_apply(
        policy, pd=score.probability_of_default, features=score.snapshot.features, requested_amount=3000.0
    )
    assert score.decision == dossier.decision == expected.decision
    assert score.recommended_limit is None  # the B2C policy sets no revenue-based limit
    assert len(score.factors) >= 3
    for factor in score.factors:
        assert factor["feature"] in B2C_FEATURE_NAMES
        assert factor["text"]["fr"] and factor["text"]["en"]
    assert [f["text"]["fr"] for f in score.factors] != [f["text"]["en"] for f in score.factors]
    assert set(score.snapshot.features) == set(B2C_FEATURE_NAMES)
    # SHAP contributions are additive in log-odds: they rebuild the PD exactly.
    margin = score.base_value + sum(score.contributions.values())
    assert 1 / (1 + math.exp(-margin)) == pytest.approx(score.probability_of_default, rel=1e-6)


def test_get_shows_the_individuals_reference_no_company_and_a_300_to_850_score(api, b2c_champion):
    created = api.post("/api/v1/scores", VALID).json()
    pending = api.get(f"/api/v1/scores/{created['id']}").json()
    assert pending["individual"] == {"reference": REFERENCE} and pending["company"] is None
    scored(created["id"])
    body = api.get(f"/api/v1/scores/{created['id']}", HTTP_ACCEPT_LANGUAGE="en").json()
    assert body["status"] == "scored"
    assert body["individual"] == {"reference": REFERENCE}
    assert body["company"] is None
    assert 300 <= body["score"] <= 850
    assert body["policy_version"] == "b2c-policy-v1" and body["model_version"] == b2c_champion.label
    assert body["decision"] in {"accept", "guarantee", "refuse"}
    assert all(f["feature"] in B2C_FEATURE_NAMES for f in body["explainability"])


def test_a_company_dossier_reads_with_no_individual(api, champion):
    created = api.post("/api/v1/scores", {"company": {"siren": "552100554"}, "requested_amount": 1000}).json()
    assert api.get(f"/api/v1/scores/{created['id']}").json()["individual"] is None


def test_another_partner_cannot_read_an_individuals_score(client, api, other_partner):
    created = api.post("/api/v1/scores", VALID).json()
    token = obtain_token(client, other_partner)
    response = client.get(f"/api/v1/scores/{created['id']}", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 404
    assert REFERENCE not in response.content.decode()


def test_without_a_b2c_champion_the_dossier_fails_with_a_reason(api, champion):
    dossier_id = api.post("/api/v1/scores", VALID).json()["id"]
    assert dossier_score(dossier_id=dossier_id) is None
    dossier = Dossier.objects.get(pk=dossier_id)
    assert dossier.status == "failed" and "No champion model" in dossier.status_detail


def test_a_sandbox_reference_always_gives_the_same_person_and_without_bank_data_the_bank_features_are_missing(
    api, b2c_champion
):
    first = scored(api.post("/api/v1/scores", VALID).json()["id"]).scores.get()
    second = scored(api.post("/api/v1/scores", VALID).json()["id"]).scores.get()
    assert first.snapshot.features == second.snapshot.features
    assert first.probability_of_default == second.probability_of_default

    no_bank = scored(api.post("/api/v1/scores", dict(VALID, bank_data=[])).json()["id"]).scores.get()
    assert no_bank.snapshot.features["monthly_income"] is None
    assert no_bank.snapshot.features["avg_balance_12m"] is None
    assert "missing:sandbox.open_banking" in no_bank.data_flags


def test_late_repayments_and_sepa_incidents_on_file_for_the_individual_count_in_its_features(api):
    dossier = Dossier.objects.select_related("individual", "partner").get(
        pk=api.post("/api/v1/scores", VALID).json()["id"]
    )
    profile = sandbox_individual(REFERENCE, with_bank=True)
    today = timezone.localdate()
    for kind, days_ago in (
        ("payment_delay", 10),
        ("payment_delay", 100),
        ("sepa_incident", 5),
        ("payment_delay", 400),
    ):  # the last one is older than 12 months
        NegativeEvent.objects.create(
            individual=dossier.individual,
            kind=kind,
            source="partner:test",
            occurred_on=today - timedelta(days=days_ago),
        )
    gathered = gather_individual(dossier)
    assert gathered.events["late_repayments_12m"] == profile.events["late_repayments_12m"] + 2
    assert gathered.bank["rejected_sepa_debits_12m"] == profile.bank["rejected_sepa_debits_12m"] + 1
    assert gathered.provenance()["negative_events"]["status"] == "ok"


def test_a_live_partners_individual_is_never_scored_from_sandbox_data(api, b2c_champion):
    partner = api.partner.partner
    partner.is_sandbox = False
    partner.save(update_fields=["is_sandbox"])
    score = scored(api.post("/api/v1/scores", dict(VALID, bank_data=[])).json()["id"]).scores.get()
    assert score.snapshot.features["monthly_income"] is None  # no token: the open-banking source had nothing
    assert score.snapshot.features["late_repayments_12m"] == 0  # nothing on file
    assert "missing:open_banking" in score.data_flags
    assert not any("sandbox" in source for source in score.snapshot.provenance)
    assert 300 <= score.score <= 850


# --- the back-office ------------------------------------------------------------------------------------------


def test_the_analyst_sees_the_individual_by_reference_and_the_300_to_850_scale(client, api, analyst, b2c_champion):
    dossier = scored(api.post("/api/v1/scores", VALID).json()["id"])
    assert client.login(username=analyst.username, password=PASSWORD)
    page = client.get(f"/dossiers/{dossier.pk}/").content.decode()
    assert f"Individual {REFERENCE}" in page
    assert "300–850" in page and "0–1000" not in page
    assert f"Individual {REFERENCE}" in client.get("/dossiers/").content.decode()


# --- the scale and the synthetic book ---------------------------------------------------------------------


def test_the_b2c_scale_is_300_to_850_and_strictly_decreasing_in_pd():
    scale = SCALES["b2c"]
    assert (scale.low, scale.high, scale.base_score, scale.base_odds, scale.pdo) == (300, 850, 600, 19, 50)
    grid = np.geomspace(1e-6, 1 - 1e-6, 4000)
    raw = [scale.raw(pd) for pd in grid]
    assert all(a > b for a, b in itertools.pairwise(raw))
    points = [score_for(pd, "b2c") for pd in grid]
    assert all(300 <= p <= 850 for p in points)
    assert all(a >= b for a, b in itertools.pairwise(points))
    # Inside the scale, odds 5 % apart are ~3.5 points apart: the published points fall strictly.
    odds = np.exp(np.arange(math.log(1 / 300), math.log(300), math.log(1.05)))
    inside = [score_for(1 / (1 + o), "b2c") for o in odds]
    inside = [p for p in inside if 300 < p < 850]
    assert len(inside) > 100
    assert all(a < b for a, b in itertools.pairwise(inside))
    assert score_for(1 / 20, "b2c") == 600  # odds 19:1 sit at the base score
    assert score_for(1 / 20, "b2c") - score_for(1 / 10.5, "b2c") == 50  # odds halved (9.5:1): minus the PDO


def test_the_synthetic_book_of_individuals_defaults_like_consumer_credit_and_the_sandbox_is_deterministic():
    portfolio = generate_b2c_portfolio(8000, seed=3)
    true_pds = [pd for _, pd, _ in portfolio]
    defaults = sum(1 for _, _, defaulted in portfolio if defaulted)
    assert 0.03 <= sum(true_pds) / len(true_pds) <= 0.06
    assert 0.03 <= defaults / len(portfolio) <= 0.065
    assert len({person.reference for person, _, _ in portfolio}) == len(portfolio)
    person, pd_true, _ = portfolio[0]
    assert pd_true == true_pd_individual(person.features())
    assert sandbox_individual("CUST-7", with_bank=True) == sandbox_individual("CUST-7", with_bank=True)
    assert sandbox_individual("CUST-7", with_bank=True) != sandbox_individual("CUST-8", with_bank=True)
    assert sandbox_individual("CUST-7", with_bank=False).bank is None
    assert generate_b2c_portfolio(50, seed=3)[0][0] == person  # the seed fixes the book


# --- the commands -----------------------------------------------------------------------------------------------


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_seed_demo_seeds_individuals_and_train_model_trains_a_b2c_champion(reference_data):
    output = run("seed_demo", "--companies", "200", "--individuals", "1500", "--seed", "5")
    assert "Seeded 1500 historical B2C files" in output
    history = Dossier.objects.filter(origin=Dossier.Origin.HISTORY)
    assert history.filter(segment="b2b").count() == 200
    b2c = history.filter(segment="b2c").select_related("individual")
    assert b2c.count() == 1500 and Outcome.objects.filter(dossier__in=b2c).count() == 1500
    assert not b2c.filter(individual__partner__isnull=False).exists()  # history belongs to no partner
    default_rate = Outcome.objects.filter(dossier__in=b2c, status="defaulted").count() / 1500
    assert 0.02 < default_rate < 0.09
    snapshot = FeatureSnapshot.objects.filter(dossier__segment="b2c").first()
    assert set(snapshot.features) == set(B2C_FEATURE_NAMES)
    assert snapshot.provenance["synthetic"]["true_pd"] == pytest.approx(true_pd_individual(snapshot.features), abs=1e-6)
    for dossier in b2c[:50]:
        assert dossier.outcome.occurred_on >= dossier.created_at.date()

    output = run("train_model", "--segment", "b2c")
    model = ModelVersion.objects.get(segment="b2c")
    assert model.status == "champion" and model.feature_names == B2C_FEATURE_NAMES
    assert f"Trained {model.label} (champion)" in output
    assert model.metrics["auc"] > 0.65
    assert json.loads(output.splitlines()[-1])["auc"] == model.metrics["auc"]
    assert not ModelVersion.objects.filter(segment="b2b").exists()  # each segment trains alone
    assert "already the champion" in run("train_model", "--segment", "b2c", "--if-no-champion")


def test_seed_demo_keeps_one_b2c_history_and_refuses_a_book_too_small_to_train_on(reference_data):
    run("seed_demo", "--companies", "200", "--individuals", "300")
    output = run("seed_demo", "--companies", "200", "--individuals", "300")
    assert "B2C history already present" in output
    assert Dossier.objects.filter(segment="b2c").count() == 300
    run("seed_demo", "--companies", "200", "--individuals", "400", "--reset")
    assert Dossier.objects.filter(segment="b2c").count() == 400
    assert Dossier.objects.filter(segment="b2b").count() == 200
    with pytest.raises(CommandError, match="--individuals"):
        run("seed_demo", "--individuals", "50")
