"""The decision policy editor: risk managers create versions, everyone with a role reads them, scores follow."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from dossiers.models import Dossier
from dossiers.services import dossier_create, dossier_score
from riskoffice.audit import Actor
from riskoffice.models import AuditEvent
from scoring.models import PolicyVersion
from scoring.policy.versions import policy_create_version, policy_values
from scoring.selectors import policy_current
from tests.conftest import ARTIFACTS, PASSWORD

pytestmark = pytest.mark.django_db

SIREN = "552100554"

# The b2b defaults of the data migration, as the form shows them.
FORM_DEFAULTS = {
    "accept_max_pd": "3",
    "guarantee_max_pd": "8",
    "open_insolvency_proceeding": "on",
    "sanctioned_naf_codes": "",
    "max_amount": "1000000",
    "limit_revenue_share": "0.1",
}


def login(client, user) -> None:
    assert client.login(username=user.username, password=PASSWORD)


def post_form(client, **changes: str):
    data = {**FORM_DEFAULTS, **changes}
    if data.get("open_insolvency_proceeding") is None:
        del data["open_insolvency_proceeding"]
    return client.post("/scoring/policy/b2b/new", data)


def scored(marketplace, amount: str = "25000", siren: str = SIREN) -> Dossier:
    dossier = dossier_create(
        partner=marketplace.partner,
        siren=siren,
        requested_amount=Decimal(amount),
        bank_tokens=["t"],
        actor=Actor(client=marketplace.api_client),
    )
    assert dossier_score(dossier_id=dossier.pk) is not None
    dossier.refresh_from_db()
    return dossier


# --- reading ---------------------------------------------------------------------------------------------


def test_an_analyst_reads_each_segments_current_policy_and_history_but_is_offered_no_form(client, analyst):
    login(client, analyst)
    response = client.get("/scoring/policy/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="current-b2b"' in body and 'data-testid="current-b2c"' in body
    assert "PD below <strong>3.00 %</strong>" in body and "PD below <strong>8.00 %</strong>" in body
    assert "amount above 1,000,000 €" in body and "open insolvency proceeding" in body
    assert 'data-testid="history-b2b"' in body and "initial setup" in body
    assert "New version" not in body


def test_a_senior_analyst_is_offered_a_new_version_per_segment(client, senior):
    login(client, senior)
    body = client.get("/scoring/policy/").content.decode()
    assert 'href="/scoring/policy/b2b/new"' in body and 'href="/scoring/policy/b2c/new"' in body


def test_the_form_starts_from_the_current_version_in_percent(client, senior):
    login(client, senior)
    body = client.get("/scoring/policy/b2b/new").content.decode()
    assert 'name="accept_max_pd" value="3"' in body and 'name="guarantee_max_pd" value="8"' in body
    assert 'name="open_insolvency_proceeding"' in body and "checked" in body
    assert "Create version 2" in body


def test_the_policy_page_uses_a_bounded_number_of_queries_whatever_the_history(
    client, senior, django_assert_max_num_queries
):
    for share in ("0.11", "0.12", "0.13", "0.14", "0.15"):
        policy_create_version(
            segment="b2b",
            values={**policy_values(policy_current("b2b")), "limit_revenue_share": float(share)},
            user=senior,
        )
    login(client, senior)
    with django_assert_max_num_queries(5):
        response = client.get("/scoring/policy/")
    assert response.content.decode().count("<td>v") == 7  # six b2b versions and b2c's first


# --- who may write -------------------------------------------------------------------------------------


def test_a_user_without_a_role_is_forbidden_the_policy_page(client, outsider):
    login(client, outsider)
    assert client.get("/scoring/policy/").status_code == 403


def test_an_anonymous_visitor_is_sent_to_the_login_page(client, reference_data):
    response = client.get("/scoring/policy/b2b/new")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize("role", ["analyst", "auditor", "outsider"])
def test_only_a_senior_analyst_may_open_or_post_the_form(client, request, role):
    login(client, request.getfixturevalue(role))
    assert client.get("/scoring/policy/b2b/new").status_code == 403
    assert post_form(client, accept_max_pd="2").status_code == 403
    assert PolicyVersion.objects.filter(segment="b2b").count() == 1
    assert not AuditEvent.objects.filter(action="policy.version_created").exists()


def test_an_unknown_segment_is_a_404(client, senior):
    login(client, senior)
    assert client.get("/scoring/policy/b2x/new").status_code == 404


# --- creating a version ----------------------------------------------------------------------------------


def test_a_senior_creates_version_2_which_becomes_current_while_version_1_is_kept_and_audited(client, senior):
    login(client, senior)
    response = post_form(
        client,
        accept_max_pd="2.5",
        guarantee_max_pd="6",
        open_insolvency_proceeding=None,
        sanctioned_naf_codes="92.00z, 64.99Z;64.99Z",
        max_amount="",
        limit_revenue_share="0.05",
    )
    assert response.status_code == 302 and response["Location"] == "/scoring/policy/#policy-b2b"

    first, second = PolicyVersion.objects.filter(segment="b2b").order_by("version")
    assert (first.version, first.is_current, first.accept_max_pd) == (1, False, 0.03)
    assert (second.version, second.is_current, second.created_by) == (2, True, senior)
    assert (second.accept_max_pd, second.guarantee_max_pd, second.limit_revenue_share) == (0.025, 0.06, 0.05)
    assert second.knockouts == {
        "open_insolvency_proceeding": False,
        "sanctioned_naf_codes": ["92.00Z", "64.99Z"],
        "max_amount": None,
    }
    assert policy_current("b2b") == second and policy_current("b2c").version == 1

    event = AuditEvent.objects.get(action="policy.version_created")
    assert event.actor_user == senior and event.object_id == str(second.pk)
    assert event.before["version"] == 1 and event.before["accept_max_pd"] == 0.03
    assert event.before["open_insolvency_proceeding"] is True
    assert event.after == {
        "version": 2,
        "accept_max_pd": 0.025,
        "guarantee_max_pd": 0.06,
        "limit_revenue_share": 0.05,
        "open_insolvency_proceeding": False,
        "sanctioned_naf_codes": ["92.00Z", "64.99Z"],
        "max_amount": None,
    }

    body = client.get(response["Location"]).content.decode()
    assert "Version 2 of the Company (B2B) policy is now current." in body
    assert 'version 2 <span class="tag">current</span>' in body
    assert "92.00Z, 64.99Z" in body and "sam.senior" in body and "<td>v1</td>" in body


def test_new_dossiers_are_scored_with_the_new_version_and_its_rules(client, senior, champion, marketplace):
    before = scored(marketplace)
    naf_code = before.naf_code
    assert before.scores.get().policy_version.version == 1 and naf_code

    login(client, senior)
    assert post_form(client, accept_max_pd="98", guarantee_max_pd="99", max_amount="10000").status_code == 302
    version_2 = policy_current("b2b")

    small, large = scored(marketplace, amount="5000"), scored(marketplace, amount="25000")
    small_score, large_score = small.scores.get(), large.scores.get()
    assert small_score.policy_version == large_score.policy_version == version_2
    assert (small_score.decision, small_score.rules_fired) == ("accept", ["threshold:accept"])
    assert (large_score.decision, large_score.rules_fired) == ("refuse", ["knockout:amount_above_cap"])
    assert before.scores.get().policy_version.version == 1  # a stored score keeps its version

    assert (
        post_form(client, accept_max_pd="98", guarantee_max_pd="99", sanctioned_naf_codes=naf_code).status_code == 302
    )
    sanctioned = scored(marketplace, amount="5000").scores.get()
    assert sanctioned.policy_version.version == 3
    assert (sanctioned.decision, sanctioned.rules_fired) == ("refuse", ["knockout:sanctioned_naf_code"])


def test_versions_are_numbered_in_turn_with_one_current_per_segment(senior):
    values = policy_values(policy_current("b2b"))
    for n, share in enumerate((0.2, 0.3, 0.4), start=2):
        assert (
            policy_create_version(segment="b2b", values={**values, "limit_revenue_share": share}, user=senior).version
            == n
        )
    assert list(PolicyVersion.objects.filter(segment="b2b", is_current=True).values_list("version", flat=True)) == [4]
    assert PolicyVersion.objects.filter(segment="b2b").count() == 4


# --- refusing bad values -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"accept_max_pd": "9"}, "The guarantee threshold (8 %) cannot be below the accept threshold (9 %)"),
        ({"accept_max_pd": "0"}, "The accept threshold is a PD above 0 % and below 100 %."),
        ({"guarantee_max_pd": "100"}, "The guarantee threshold is a PD above 0 % and below 100 %."),
        ({"accept_max_pd": ""}, "This field is required."),
        ({"accept_max_pd": "three"}, "Enter a number."),
        ({"sanctioned_naf_codes": "62.01Z, 6201Z"}, "“6201Z” is not a NAF code"),
        ({"sanctioned_naf_codes": "62.01"}, "“62.01” is not a NAF code"),
        ({"sanctioned_naf_codes": "A2.01Z"}, "“A2.01Z” is not a NAF code"),
        ({"max_amount": "-5"}, "The amount cap must be positive; leave it empty for no cap."),
        ({"max_amount": "0"}, "The amount cap must be positive"),
        ({"limit_revenue_share": "1.5"}, "The share of revenue lies between 0 and 1."),
        ({}, "Nothing changed: this is already version 1 of the policy."),
    ],
)
def test_invalid_values_are_form_errors_and_nothing_is_created(client, senior, changes, message):
    login(client, senior)
    response = post_form(client, **changes)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert list(PolicyVersion.objects.filter(segment="b2b").values_list("version", "is_current")) == [(1, True)]
    assert not AuditEvent.objects.filter(action="policy.version_created").exists()


def test_the_service_refuses_thresholds_out_of_order_before_the_database_would(senior):
    values = {**policy_values(policy_current("b2b")), "accept_max_pd": 0.09, "guarantee_max_pd": 0.05}
    with pytest.raises(ValidationError) as error:
        policy_create_version(segment="b2b", values=values, user=senior)
    assert "guarantee_max_pd" in error.value.message_dict
    assert PolicyVersion.objects.filter(segment="b2b").count() == 1


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_risk_manager_tightens_the_policy_in_the_browser(live_server, browser_page, senior):
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{live_server.url}/login/?next=/scoring/policy/")
    page.get_by_label("Username").fill(senior.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Decision policy")).to_be_visible()

    page.get_by_test_id("new-version-b2b").click()
    form = page.get_by_test_id("policy-form")
    form.get_by_label("Accept below a PD of (%)").fill("2.5")
    form.get_by_label("Refuse these NAF codes").fill("92.00Z, 6201Z")
    form.get_by_role("button", name="Create version 2").click()
    expect(page.get_by_test_id("policy-form")).to_contain_text("“6201Z” is not a NAF code")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "policy-form-errors.png"), full_page=True)
    assert PolicyVersion.objects.filter(segment="b2b").count() == 1

    page.get_by_test_id("policy-form").get_by_label("Refuse these NAF codes").fill("92.00Z, 62.01Z")
    page.get_by_test_id("policy-form").get_by_role("button", name="Create version 2").click()
    expect(page.get_by_role("status")).to_have_text("Version 2 of the Company (B2B) policy is now current.")
    expect(page.get_by_test_id("current-b2b")).to_contain_text("2.50 %")
    expect(page.get_by_test_id("history-b2b").locator("tbody tr")).to_have_count(2)
    page.screenshot(path=str(ARTIFACTS / "policy.png"), full_page=True)
    assert policy_current("b2b").knockouts["sanctioned_naf_codes"] == ["92.00Z", "62.01Z"]
    assert page.broken_resources == []
