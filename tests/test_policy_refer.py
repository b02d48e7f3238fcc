"""Missing data never reads as low risk: thin data is referred to an analyst, and missing data is named as missing."""

from __future__ import annotations

import re
from decimal import Decimal
from importlib import import_module

import pytest

from dossiers.models import Dossier
from dossiers.services import dossier_score
from scoring.model import engine
from scoring.model.engine import Explanation
from scoring.model.features import B2C_FEATURE_NAMES, FEATURE_NAMES
from scoring.model.synthetic import sandbox_company
from scoring.models import Decision, PolicyVersion
from scoring.policy.apply import policy_apply, refer_rules
from scoring.policy.versions import policy_create_version, policy_values
from scoring.selectors import policy_current
from tests.conftest import PASSWORD

DEFAULTS = import_module("scoring.migrations.0002_default_policies").DEFAULTS

# A SIREN whose sandbox profile has no published accounts; sent without a bank token, it has no bank data.
NO_ACCOUNTS_SIREN = "100000009"
SCORES = "/api/v1/scores"

STATEMENTS = {"revenue": 1_000_000.0, "net_margin": 0.05, "equity_ratio": 0.3}
BANK = {"avg_balance_12m": 20_000.0, "days_overdraft_12m": 3}


def b2b_policy(**knockouts: object) -> PolicyVersion:
    """The default B2B policy (accept < 3 %, guarantee < 8 %, cap 1 M€, no referral keys), unsaved."""
    values = {**DEFAULTS["b2b"], "knockouts": {**DEFAULTS["b2b"]["knockouts"], **knockouts}}
    return PolicyVersion(segment="b2b", version=1, **values)


def b2c_policy(**knockouts: object) -> PolicyVersion:
    values = {**DEFAULTS["b2c"], "knockouts": {**DEFAULTS["b2c"]["knockouts"], **knockouts}}
    return PolicyVersion(segment="b2c", version=1, **values)


def nothing_but(**present: object) -> dict:
    """B2B features all missing except ``present`` (and no insolvency proceeding)."""
    return {**dict.fromkeys(FEATURE_NAMES), "open_insolvency_proceeding": 0, **present}


# --- the policy refers thin data ---------------------------------------------------------------------------


def test_a_company_with_neither_accounts_nor_bank_data_is_referred_whatever_a_low_pd_says():
    result = policy_apply(b2b_policy(), pd=0.005, features=nothing_but(), requested_amount=94_900)

    assert result.decision == Decision.REFER
    assert result.rules_fired == ["threshold:accept", "refer:thin_data"]
    assert result.recommended_limit is None


def test_a_high_pd_on_thin_data_is_referred_too_and_the_threshold_it_reached_is_kept():
    result = policy_apply(b2b_policy(), pd=0.4, features=nothing_but(), requested_amount=10_000)

    assert result.decision == Decision.REFER
    assert result.rules_fired == ["threshold:refuse", "refer:thin_data"]


def test_a_knockout_still_refuses_first_even_on_thin_data():
    result = policy_apply(
        b2b_policy(), pd=0.005, features=nothing_but(open_insolvency_proceeding=1), requested_amount=10_000
    )

    assert result.decision == Decision.REFUSE
    assert result.rules_fired == ["knockout:open_insolvency_proceeding"]


@pytest.mark.parametrize("present", [STATEMENTS, BANK], ids=["accounts-only", "bank-only"])
def test_one_source_on_the_applicants_finances_is_enough_by_default(present):
    result = policy_apply(b2b_policy(), pd=0.005, features=nothing_but(**present), requested_amount=10_000)

    assert result.decision == Decision.ACCEPT


def test_a_policy_may_require_both_accounts_and_bank_data():
    policy = b2b_policy(min_data_sources=2)

    assert policy_apply(policy, pd=0.005, features=nothing_but(**BANK), requested_amount=1).decision == "refer"
    both = nothing_but(**STATEMENTS, **BANK)
    assert policy_apply(policy, pd=0.005, features=both, requested_amount=1).decision == "accept"


def test_a_policy_may_switch_thin_data_referral_off():
    policy = b2b_policy(refer_when_thin=False)

    result = policy_apply(policy, pd=0.005, features=nothing_but(), requested_amount=10_000)

    assert result.decision == Decision.ACCEPT


def test_an_accept_for_which_no_limit_can_be_computed_is_referred_above_the_policys_amount():
    bank_only = nothing_but(**BANK)  # no revenue: no limit

    small = policy_apply(b2b_policy(), pd=0.005, features=bank_only, requested_amount=25_000)
    large = policy_apply(b2b_policy(), pd=0.005, features=bank_only, requested_amount=25_001)
    uncapped = policy_apply(
        b2b_policy(refer_unlimited_above=None), pd=0.005, features=bank_only, requested_amount=94_900
    )

    assert (small.decision, small.recommended_limit) == ("accept", None)
    assert large.decision == Decision.REFER
    assert large.rules_fired == ["threshold:accept", "refer:no_limit_above_amount"]
    assert uncapped.decision == Decision.ACCEPT


def test_an_individual_without_bank_data_is_referred_but_a_b2c_accept_needs_no_limit():
    no_bank = {**dict.fromkeys(B2C_FEATURE_NAMES), "late_repayments_12m": 0}
    with_bank = {**no_bank, "monthly_income": 2400.0, "avg_balance_12m": 800.0}

    assert policy_apply(b2c_policy(), pd=0.01, features=no_bank, requested_amount=3000).decision == "refer"
    # The B2C policy recommends no limit (share 0): accepting without one is its rule, not a gap.
    assert policy_apply(b2c_policy(), pd=0.01, features=with_bank, requested_amount=60_000).decision == "accept"


def test_versions_saved_before_referral_existed_apply_the_segments_defaults(reference_data):
    policy = policy_current("b2b")

    assert "refer_when_thin" not in policy.knockouts
    assert refer_rules(policy) == {"refer_when_thin": True, "min_data_sources": 1, "refer_unlimited_above": 25000}
    assert refer_rules(policy_current("b2c"))["refer_unlimited_above"] is None


def test_a_new_version_stores_its_referral_rules_with_its_knockouts(senior):
    values = {**policy_values(policy_current("b2b")), "min_data_sources": 2, "refer_unlimited_above": 10_000}

    version = policy_create_version(segment="b2b", values=values, note="Both sources for B2B.", user=senior)

    assert version.knockouts["refer_when_thin"] is True
    assert (version.knockouts["min_data_sources"], version.knockouts["refer_unlimited_above"]) == (2, 10_000)


# --- explanations name missing data as missing ---------------------------------------------------------------


def test_a_missing_value_is_a_missing_data_factor_never_a_risk_lowering_one():
    contributions = dict.fromkeys(FEATURE_NAMES, 0.0)
    contributions.update(days_overdraft_12m=-0.8, revenue=0.4, company_age_years=-0.3)
    explanation = Explanation(probability_of_default=0.02, base_value=-3.0, contributions=contributions)
    features = nothing_but(company_age_years=14.0)

    factors = engine.factors_from(explanation, features)

    overdraft = next(f for f in factors if f["feature"] == "days_overdraft_12m")
    assert overdraft["direction"] == "missing" and overdraft["missing"] is True and overdraft["value"] is None
    assert overdraft["text"] == {
        "en": "Missing data: days in overdraft (not available)",
        "fr": "Donnée manquante : jours de découvert (non disponible)",
    }
    lowering = [f["feature"] for f in factors if f["direction"] == "decreases_risk"]
    assert lowering == ["company_age_years"]


# --- through the API: the 94 900 € request with nothing behind it -------------------------------------------


@pytest.fixture
def no_data_dossier(api, champion) -> dict:
    """POST /api/v1/scores for 94 900 € on a company without accounts, with no bank token; then scored."""
    assert not sandbox_company(NO_ACCOUNTS_SIREN, with_bank=False).financials
    response = api.post(SCORES, {"company": {"siren": NO_ACCOUNTS_SIREN}, "requested_amount": 94900})
    assert response.status_code == 202, response.content
    dossier_id = response.json()["id"]
    assert dossier_score(dossier_id=dossier_id) is not None
    return {"id": dossier_id}


def test_a_request_with_no_accounts_and_no_bank_data_is_referred_to_an_analyst(api, no_data_dossier):
    body = api.get(f"{SCORES}/{no_data_dossier['id']}", HTTP_ACCEPT_LANGUAGE="en").json()

    assert body["status"] == "scored"
    assert body["recommendation"] == body["decision"] == "refer"
    assert body["recommended_limit"] is None
    dossier = Dossier.objects.get(pk=no_data_dossier["id"])
    assert dossier.requested_amount == Decimal("94900.00")
    assert "refer:thin_data" in dossier.scores.get().rules_fired
    assert not dossier.scores.get().recommended_limit


def test_the_referral_leads_with_the_missing_data_none_of_it_lowering_risk(api, no_data_dossier):
    english = api.get(f"{SCORES}/{no_data_dossier['id']}", HTTP_ACCEPT_LANGUAGE="en").json()["explainability"]
    french = api.get(f"{SCORES}/{no_data_dossier['id']}").json()["explainability"]

    assert english[0]["direction"] == "missing"
    for factor in english:
        if factor["value"] is None:
            assert factor["direction"] == "missing"
            assert factor["text"].startswith("Missing data: ") and factor["text"].endswith("(not available)")
        assert factor["direction"] in ("increases_risk", "decreases_risk", "missing")
    overdraft = [f for f in english if f["feature"] == "days_overdraft_12m"]
    assert all(f["direction"] == "missing" for f in overdraft)
    assert [f["direction"] for f in english] == [f["direction"] for f in french]
    assert french[0]["text"].startswith("Donnée manquante : ")


def test_the_analyst_reads_the_missing_data_as_missing_on_the_dossier_page(client, analyst, no_data_dossier):
    assert client.login(username=analyst.username, password=PASSWORD)

    body = client.get(f"/dossiers/{no_data_dossier['id']}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert 'data-direction="missing"' in body
    assert "The missing data comes first: an analyst decides." in body
    assert "refer:thin_data" in body
    start = body.index('data-testid="factors"')
    reasons = body[start : body.index("</ol>", start)]
    directions = re.findall(r'<li class="\w+" data-direction="(\w+)"', reasons)
    assert directions[0] == "missing"
    assert directions == sorted(directions, key=["missing", "increases_risk", "decreases_risk"].index)


# --- reasons that fit the decision -------------------------------------------------------------------------


def scored_under(api, senior, *, accept_max_pd: float, guarantee_max_pd: float) -> dict:
    """A 5 000 € request from the same company (accounts and bank data), scored under a fresh policy version."""
    values = {
        **policy_values(policy_current("b2b")),
        "accept_max_pd": accept_max_pd,
        "guarantee_max_pd": guarantee_max_pd,
    }
    policy_create_version(segment="b2b", values=values, note="Ordering test.", user=senior)
    response = api.post(SCORES, {"company": {"siren": "552100554"}, "bank_data": ["tok"], "requested_amount": 5000})
    assert dossier_score(dossier_id=response.json()["id"]) is not None
    return api.get(f"{SCORES}/{response.json()['id']}", HTTP_ACCEPT_LANGUAGE="en").json()


def test_a_guarantee_leads_with_what_raised_the_risk_and_an_accept_with_what_lowered_it(api, senior, champion):
    accepted = scored_under(api, senior, accept_max_pd=0.98, guarantee_max_pd=0.99)
    guaranteed = scored_under(api, senior, accept_max_pd=0.0001, guarantee_max_pd=0.99)

    assert (accepted["decision"], guaranteed["decision"]) == ("accept", "guarantee")
    accept_order = [f["direction"] for f in accepted["explainability"]]
    guarantee_order = [f["direction"] for f in guaranteed["explainability"]]
    assert {"increases_risk", "decreases_risk"} <= set(accept_order)  # the same company: the same reasons
    assert sorted(accept_order) == sorted(guarantee_order)
    assert accept_order == sorted(accept_order, key=["decreases_risk", "increases_risk", "missing"].index)
    assert guarantee_order == sorted(guarantee_order, key=["increases_risk", "missing", "decreases_risk"].index)
    for reasons in (accepted["explainability"], guaranteed["explainability"]):
        for kind in ("increases_risk", "decreases_risk"):
            sizes = [abs(f["contribution"]) for f in reasons if f["direction"] == kind]
            assert sizes == sorted(sizes, reverse=True) and 1 <= len(sizes) <= 4


def test_the_dossier_page_orders_the_reasons_as_the_api_does(client, api, analyst, senior, champion):
    guaranteed = scored_under(api, senior, accept_max_pd=0.0001, guarantee_max_pd=0.99)
    assert client.login(username=analyst.username, password=PASSWORD)

    body = client.get(f"/dossiers/{guaranteed['id']}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    start = body.index('data-testid="factors"')
    reasons = body[start : body.index("</ol>", start)]
    assert re.findall(r'<li class="\w+" data-direction="(\w+)"', reasons) == [
        f["direction"] for f in guaranteed["explainability"]
    ]
    assert "What raised the risk comes first: these are the principal reasons for this decision." in body
    # The bars carry a cue that is not colour: a glyph and a sign, and words for screen readers.
    assert '<span aria-hidden="true">▲ +' in body and '<span class="visually-hidden"> raises risk' in body
    assert '<span aria-hidden="true">▼ ' in body and '<span class="visually-hidden"> lowers risk' in body
