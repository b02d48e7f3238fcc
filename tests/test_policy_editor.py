"""The decision policy editor: risk managers preview then publish versions, everyone with a role reads them."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from dossiers.models import Dossier
from dossiers.services import dossier_create, dossier_score
from riskoffice.audit import Actor
from riskoffice.models import AuditEvent
from scoring.model.features import FEATURE_NAMES
from scoring.models import FeatureSnapshot, PolicyVersion, Score
from scoring.policy.scale import band_for, score_for
from scoring.policy.versions import policy_create_version, policy_values
from scoring.selectors import policy_current
from tests.conftest import ARTIFACTS, PASSWORD, login, pass_second_factor
from tests.test_query_footprint import queries_of

pytestmark = pytest.mark.django_db

SIREN = "552100554"
NOTE = "Risk committee of 3 March: tighter accept threshold."

# The b2b defaults of the data migration, as the form shows them (referral rules: the segment's defaults).
FORM_DEFAULTS = {
    "accept_max_pd": "3",
    "guarantee_max_pd": "8",
    "open_insolvency_proceeding": "on",
    "sanctioned_naf_codes": "",
    "max_amount": "1000000",
    "limit_revenue_share": "0.1",
    "refer_when_thin": "on",
    "min_data_sources": "1",
    "refer_unlimited_above": "25000",
    "note": NOTE,
}


@pytest.fixture(autouse=True)
def english(client) -> None:
    """The page texts these tests quote are the English ones."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"


def form_data(**changes: str | None) -> dict[str, str]:
    data = {**FORM_DEFAULTS, **changes}
    return {name: value for name, value in data.items() if value is not None}


def preview_form(client, segment: str = "b2b", **changes: str | None):
    return client.post(f"/scoring/policy/{segment}/new", {**form_data(**changes), "action": "preview"})


def previewed_digest(response) -> str:
    found = re.search(r'name="previewed" value="(\w+)"', response.content.decode())
    assert found, "the preview carries the fingerprint of the values it showed"
    return found.group(1)


def post_form(client, **changes: str | None):
    """Preview the values, then publish them as the editor's flow does; the publishing response."""
    preview = preview_form(client, **changes)
    if preview.status_code != 200:
        return preview
    return client.post(
        "/scoring/policy/b2b/new", {**form_data(**changes), "action": "publish", "previewed": previewed_digest(preview)}
    )


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
    assert 'name="min_data_sources" value="1"' in body and 'name="refer_unlimited_above" value="25000"' in body
    assert 'name="note"' in body
    assert "Preview effect" in body and "Publish version" not in body  # publishing comes after a preview


def test_the_policy_page_uses_a_bounded_number_of_queries_whatever_the_history(client, senior):
    for share in ("0.11", "0.12", "0.13", "0.14", "0.15"):
        policy_create_version(
            segment="b2b",
            values={**policy_values(policy_current("b2b")), "limit_revenue_share": float(share)},
            note=f"Limit share {share}.",
            user=senior,
        )
    login(client, senior)
    response, queries = queries_of(lambda: client.get("/scoring/policy/"))  # the access log's append apart
    assert len(queries) <= 6  # 6: the senior analyst's second factor (django-otp reads the session's device)
    body = response.content.decode()
    assert body.count("<td>v") == 7  # six b2b versions and b2c's first
    assert 'data-testid="note-v6">Limit share 0.15.<' in body


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
    assert (
        client.post("/scoring/policy/b2b/new", {**form_data(accept_max_pd="2"), "action": "publish"}).status_code == 403
    )
    assert PolicyVersion.objects.filter(segment="b2b").count() == 1
    assert not AuditEvent.objects.filter(action="policy.version_created").exists()


def test_an_unknown_segment_is_a_404(client, senior):
    login(client, senior)
    assert client.get("/scoring/policy/b2x/new").status_code == 404


# --- creating a version ----------------------------------------------------------------------------------


def test_a_senior_previews_then_creates_version_2_which_becomes_current_while_version_1_is_kept_and_audited(
    client, senior
):
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
    assert (second.version, second.is_current, second.created_by, second.note) == (2, True, senior, NOTE)
    assert (second.accept_max_pd, second.guarantee_max_pd, second.limit_revenue_share) == (0.025, 0.06, 0.05)
    assert second.knockouts == {
        "open_insolvency_proceeding": False,
        "sanctioned_naf_codes": ["92.00Z", "64.99Z"],
        "max_amount": None,
        "refer_when_thin": True,
        "min_data_sources": 1,
        "refer_unlimited_above": 25000,
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
        "refer_when_thin": True,
        "min_data_sources": 1,
        "refer_unlimited_above": 25000,
        "note": NOTE,
    }

    body = client.get(response["Location"]).content.decode()
    assert "Version 2 of the Company (B2B) policy is now current." in body
    assert 'version 2 <span class="tag">current</span>' in body
    assert "92.00Z, 64.99Z" in body and "sam.senior" in body and "<td>v1</td>" in body
    assert f'data-testid="note-v2">{NOTE}<' in body and 'data-testid="note-v1">—<' in body


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
            policy_create_version(
                segment="b2b", values={**values, "limit_revenue_share": share}, note="A new share.", user=senior
            ).version
            == n
        )
    assert list(PolicyVersion.objects.filter(segment="b2b", is_current=True).values_list("version", flat=True)) == [4]
    assert PolicyVersion.objects.filter(segment="b2b").count() == 4


# --- previewing the effect on past dossiers ------------------------------------------------------------------

FULL_DATA = {**dict.fromkeys(FEATURE_NAMES), "revenue": 5_000_000.0, "avg_balance_12m": 30_000.0}


def scored_with_pd(marketplace, champion, pd: float, *, features: dict | None = None, amount: str = "10000"):
    """A dossier whose latest score has the given PD, on the given features (accounts and bank data by default)."""
    dossier = dossier_create(
        partner=marketplace.partner,
        siren=SIREN,
        requested_amount=Decimal(amount),
        bank_tokens=[],
        actor=Actor(client=marketplace.api_client),
    )
    snapshot = FeatureSnapshot.objects.create(
        dossier=dossier, features=features or FULL_DATA, collected_at=timezone.now()
    )
    version = dossier.scores.count() + 1
    return Score.objects.create(
        dossier=dossier,
        snapshot=snapshot,
        model_version=champion,
        policy_version=policy_current("b2b"),
        probability_of_default=pd,
        score=score_for(pd, "b2b"),
        band=band_for(pd),
        decision="accept",
        version=version,
        base_value=0.0,
        contributions={},
        factors=[],
    )


@pytest.fixture
def history(marketplace, champion) -> list[Score]:
    """Ten dossiers with known PDs under the 3 % / 8 % policy: 4 accepted, 3 guaranteed, 2 refused, 1 referred."""
    scores = [scored_with_pd(marketplace, champion, pd) for pd in (0.01, 0.01, 0.02, 0.025, 0.04, 0.05, 0.07)]
    scores += [scored_with_pd(marketplace, champion, pd) for pd in (0.2, 0.3)]
    scores.append(scored_with_pd(marketplace, champion, 0.01, features=dict.fromkeys(FEATURE_NAMES)))  # thin
    return scores


def mix(body: str, side: str) -> dict[str, int]:
    return {
        decision: int(re.search(rf'data-testid="{side}-{decision}">(\d+)<', body).group(1))
        for decision in ("accept", "guarantee", "refuse", "refer")
    }


def test_the_preview_shows_the_decision_mix_under_the_current_version_and_the_draft(client, senior, history):
    login(client, senior)

    response = preview_form(client, accept_max_pd="6")

    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="policy-preview"' in body and "Dossiers replayed: 10," in body
    assert mix(body, "current") == {"accept": 4, "guarantee": 3, "refuse": 2, "refer": 1}
    assert mix(body, "draft") == {"accept": 6, "guarantee": 1, "refuse": 2, "refer": 1}
    assert "Dossiers whose decision changes: <strong>2</strong> (20.0 %)." in body
    assert "Ask for a guarantee → Accept: 2" in body
    # The draft is kept in the form, nothing is saved, and publishing is offered.
    assert 'name="accept_max_pd" value="6"' in body and NOTE in body
    assert "Publish version 2" in body
    assert PolicyVersion.objects.filter(segment="b2b").count() == 1
    assert not AuditEvent.objects.filter(action="policy.version_created").exists()


def test_the_preview_replays_each_dossiers_latest_score_and_only_the_segments(client, senior, history, marketplace):
    rescored = history[0].dossier  # PD 1 %, re-scored at 50 %: its latest version is a refusal
    snapshot = FeatureSnapshot.objects.create(dossier=rescored, features=FULL_DATA, collected_at=timezone.now())
    Score.objects.create(
        **{
            f.name: getattr(history[0], f.name)
            for f in Score._meta.fields
            if f.name not in ("id", "version", "snapshot", "probability_of_default", "created_at")
        },
        snapshot=snapshot,
        version=2,
        probability_of_default=0.5,
    )
    login(client, senior)

    body = preview_form(client, accept_max_pd="6").content.decode()

    assert "Dossiers replayed: 10," in body
    assert mix(body, "current") == {"accept": 3, "guarantee": 3, "refuse": 3, "refer": 1}
    assert not PolicyVersion.objects.filter(segment="b2c", version__gt=1).exists()
    b2c = client.post(
        "/scoring/policy/b2c/new",
        {
            **form_data(
                max_amount="75000",
                limit_revenue_share="0",
                refer_unlimited_above="",
                accept_max_pd="5",
                guarantee_max_pd="10",
            ),
            "action": "preview",
        },
    )
    assert b2c.status_code == 200 and "Dossiers replayed: 0," in b2c.content.decode()


def test_the_preview_replays_the_last_n_dossiers_as_asked(client, senior, history):
    login(client, senior)

    body = client.post(
        "/scoring/policy/b2b/new", {**form_data(accept_max_pd="6"), "action": "preview", "last": "4"}
    ).content.decode()

    # The four newest: the thin one, PD 30 %, PD 20 %, PD 7 %.
    assert "Dossiers replayed: 4," in body and 'name="last" value="4"' in body
    assert mix(body, "current") == {"accept": 0, "guarantee": 1, "refuse": 2, "refer": 1}
    assert mix(body, "draft") == {"accept": 0, "guarantee": 1, "refuse": 2, "refer": 1}
    assert "Dossiers whose decision changes: <strong>0</strong>" in body


def test_publishing_needs_the_values_previewed(client, senior, history):
    login(client, senior)
    digest = previewed_digest(preview_form(client, accept_max_pd="6"))

    changed = client.post(
        "/scoring/policy/b2b/new", {**form_data(accept_max_pd="5"), "action": "publish", "previewed": digest}
    )
    unpreviewed = client.post("/scoring/policy/b2b/new", {**form_data(accept_max_pd="5"), "action": "publish"})

    for response in (changed, unpreviewed):
        assert response.status_code == 200
        body = response.content.decode()
        assert "Review the effect of these values on past dossiers, then publish." in body
        assert 'data-testid="policy-preview"' in body
    assert PolicyVersion.objects.filter(segment="b2b").count() == 1

    published = client.post(
        "/scoring/policy/b2b/new",
        {**form_data(accept_max_pd="5"), "action": "publish", "previewed": previewed_digest(changed)},
    )
    assert published.status_code == 302
    assert policy_current("b2b").accept_max_pd == 0.05 and policy_current("b2b").note == NOTE
    # The scores already stored keep the version that produced them.
    assert {s.policy_version.version for s in Score.objects.all()} == {1}


@pytest.mark.parametrize("role", ["analyst", "auditor"])
def test_only_a_senior_may_preview(client, request, role, history):
    login(client, request.getfixturevalue(role))
    assert preview_form(client, accept_max_pd="6").status_code == 403


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
        ({"min_data_sources": "3"}, "The number of data sources required is a whole number from 0 to 2."),
        ({"refer_unlimited_above": "0"}, "The amount must be positive; leave it empty never to refer"),
        ({"note": "  "}, "This field is required."),
        ({}, "Nothing changed: this is already version 1 of the policy."),
    ],
)
def test_invalid_values_are_form_errors_and_nothing_is_created(client, senior, changes, message):
    login(client, senior)
    for action in ("preview", "publish"):
        response = client.post("/scoring/policy/b2b/new", {**form_data(**changes), "action": action})
        assert response.status_code == 400
        body = response.content.decode()
        assert message in body
        assert 'data-testid="policy-preview"' not in body
    assert list(PolicyVersion.objects.filter(segment="b2b").values_list("version", "is_current")) == [(1, True)]
    assert not AuditEvent.objects.filter(action="policy.version_created").exists()


def test_the_service_refuses_thresholds_out_of_order_before_the_database_would(senior):
    values = {**policy_values(policy_current("b2b")), "accept_max_pd": 0.09, "guarantee_max_pd": 0.05}
    with pytest.raises(ValidationError) as error:
        policy_create_version(segment="b2b", values=values, note=NOTE, user=senior)
    assert "guarantee_max_pd" in error.value.message_dict
    assert PolicyVersion.objects.filter(segment="b2b").count() == 1


def test_the_service_refuses_a_version_without_a_note(senior):
    values = {**policy_values(policy_current("b2b")), "accept_max_pd": 0.02}
    with pytest.raises(ValidationError) as error:
        policy_create_version(segment="b2b", values=values, note=" ", user=senior)
    assert "note" in error.value.message_dict
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
    pass_second_factor(page, senior)
    expect(page.get_by_role("heading", name="Decision policy")).to_be_visible()

    page.get_by_test_id("new-version-b2b").click()
    form = page.get_by_test_id("policy-form")
    form.get_by_label("Accept below a PD of (%)").fill("2.5")
    form.get_by_label("Refuse these NAF codes").fill("92.00Z, 6201Z")
    form.get_by_label("Why this version").fill(NOTE)
    form.get_by_role("button", name="Preview effect").click()
    expect(page.get_by_test_id("policy-form")).to_contain_text("“6201Z” is not a NAF code")
    expect(page.get_by_role("button", name="Publish version 2")).to_have_count(0)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "policy-form-errors.png"), full_page=True)
    assert PolicyVersion.objects.filter(segment="b2b").count() == 1

    page.get_by_test_id("policy-form").get_by_label("Refuse these NAF codes").fill("92.00Z, 62.01Z")
    page.get_by_test_id("policy-form").get_by_role("button", name="Preview effect").click()
    expect(page.get_by_test_id("policy-preview")).to_contain_text("Dossiers whose decision changes: 0")
    # The draft values are kept in the form while the preview is read.
    expect(page.get_by_test_id("policy-form").get_by_label("Accept below a PD of (%)")).to_have_value("2.5")
    page.screenshot(path=str(ARTIFACTS / "policy-preview.png"), full_page=True)
    assert PolicyVersion.objects.filter(segment="b2b").count() == 1
    page.get_by_test_id("policy-form").get_by_role("button", name="Publish version 2").click()
    expect(page.get_by_role("status")).to_have_text("Version 2 of the Company (B2B) policy is now current.")
    expect(page.get_by_test_id("current-b2b")).to_contain_text("2.50 %")
    expect(page.get_by_test_id("history-b2b").locator("tbody tr")).to_have_count(2)
    page.screenshot(path=str(ARTIFACTS / "policy.png"), full_page=True)
    assert policy_current("b2b").knockouts["sanctioned_naf_codes"] == ["92.00Z", "62.01Z"]
    assert page.broken_resources == []
