"""Overrides with coded reasons and four eyes, over HTTP (issue 9).

- An override names a reason code (an active one, from the list admins keep) and a text.
- One that raises exposure waits, ``pending``, with why (approval_reasons): refuse or refer → accept or
  guarantee ("refuse_to_grant"); accept above the latest score's recommended limit, or with none
  ("above_recommended_limit"); an amount above OVERRIDE_APPROVAL_AMOUNT ("above_amount"); a score that fired a
  knock-out ("knockout"). Until a senior analyst other than its author approves it, the decision in force
  stays and the partner is told nothing; a rejection leaves the decision as it was.
- One that lowers exposure is final at once.
- An override that becomes final sends ``decision.overridden`` (codes only) in the same transaction.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils.html import escape

from alerts.models import WebhookDelivery
from alerts.services import webhook_endpoint_create
from dossiers.models import Dossier, Override, OverrideReason
from dossiers.overrides import override_needs_approval
from dossiers.services import dossier_create, dossier_override, dossier_score
from riskoffice.audit import Actor
from riskoffice.models import AuditEvent
from riskoffice.roles import ANALYST, SENIOR_ANALYST
from scoring.models import Score
from tests.conftest import _user, login, override_reasons_seed

pytestmark = pytest.mark.django_db

SIREN = "552100554"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
REASON = "Personal guarantee from the managing director."


def reason_code(code: str = "guarantee_obtained") -> OverrideReason:
    """One of the reason codes migration 0007 seeds, made sure of: transactional tests truncate the seed away."""
    override_reasons_seed()
    return OverrideReason.objects.get(code=code)


def dossier_given(
    marketplace,
    *,
    decision: str,
    amount: str = "25000",
    limit: str | None = None,
    rules: tuple[str, ...] = (),
) -> Dossier:
    """A dossier scored by the real service, then given the decision in force and score the case needs."""
    dossier = dossier_create(
        partner=marketplace.partner,
        siren=SIREN,
        requested_amount=Decimal(amount),
        bank_tokens=["t"],
        actor=Actor(client=marketplace.api_client),
    )
    assert dossier_score(dossier_id=dossier.pk) is not None
    Score.objects.filter(dossier=dossier).update(
        decision="refuse" if decision == "refer" else decision,
        recommended_limit=Decimal(limit) if limit is not None else None,
        rules_fired=list(rules),
    )
    Dossier.objects.filter(pk=dossier.pk).update(decision=decision)
    dossier.refresh_from_db()
    return dossier


def detail_url(dossier: Dossier) -> str:
    return reverse("dossiers:detail", args=[dossier.pk])


def override_url(dossier: Dossier) -> str:
    return reverse("dossiers:override", args=[dossier.pk])


def review_url(override: Override, action: str) -> str:
    return reverse(f"dossiers:override-{action}", args=[override.dossier_id, override.pk])


def override_form(decision: str, code: str = "guarantee_obtained", reason: str = REASON) -> dict[str, object]:
    return {"decision": decision, "reason_code": reason_code(code).pk, "reason": reason}


def deliveries() -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.filter(event_type="decision.overridden").order_by("id"))


def audit_actions(dossier: Dossier) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_type="dossiers.dossier", object_id=str(dossier.pk))
        .order_by("at", "id")
        .values_list("action", flat=True)
    )


@pytest.fixture
def second_senior(reference_data) -> User:
    return _user("sue.senior", SENIOR_ANALYST)


@pytest.fixture
def subscribed(marketplace, settings):
    """The marketplace's webhook endpoint for decision.overridden: each event leaves one delivery in the outbox."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # no DNS lookup of the example host
    endpoint, _ = webhook_endpoint_create(
        partner=marketplace.partner,
        url="https://hooks.pay-later.example/riskoffice",
        event_types=["decision.overridden"],
        actor=Actor(client=marketplace.api_client),
    )
    return endpoint


@pytest.fixture
def refused(champion, marketplace, subscribed) -> Dossier:
    """A dossier the policy refused: granting it is a four-eyes override."""
    return dossier_given(marketplace, decision="refuse")


@pytest.fixture
def pending(refused, analyst) -> Override:
    """The analyst asked to accept the refused dossier: it awaits a senior analyst."""
    override = dossier_override(
        dossier=refused, decision="accept", reason_code=reason_code(), reason=REASON, user=analyst
    )
    assert override.status == Override.Status.PENDING
    return override


# --- which overrides need four eyes, and why ---------------------------------------------------------------

# fmt: off
CASES = [
    # decision in force, new decision, amount, recommended limit, rules fired, approval reasons ([] = final at once)
    pytest.param("refuse", "guarantee", "25000", None, (), ["refuse_to_grant"], id="refuse to guarantee"),
    pytest.param("refuse", "accept", "25000", None, (), ["refuse_to_grant", "above_recommended_limit"],
                 id="refuse to accept, no limit"),
    pytest.param("refer", "guarantee", "25000", "50000", (), ["refuse_to_grant"], id="refer to guarantee"),
    pytest.param("refer", "accept", "25000", "50000", (), ["refuse_to_grant"], id="refer to accept within the limit"),
    pytest.param("refer", "refuse", "25000", None, (), [], id="refer to refuse: final at once"),
    pytest.param("guarantee", "accept", "25000", "7400", (), ["above_recommended_limit"],
                 id="accept above the recommended limit"),
    pytest.param("guarantee", "accept", "25000", None, (), ["above_recommended_limit"], id="accept with no limit"),
    pytest.param("guarantee", "accept", "25000", "50000", (), [], id="accept within the limit: final at once"),
    pytest.param("guarantee", "accept", "150000", "500000", (), ["above_amount"],
                 id="accept above the approval amount"),
    pytest.param("guarantee", "accept", "25000", "50000", ("knockout:sanctioned_naf_code",), ["knockout"],
                 id="accept after a knock-out"),
    pytest.param("refuse", "accept", "150000", None, ("knockout:open_insolvency_proceeding", "threshold:refuse"),
                 ["refuse_to_grant", "above_recommended_limit", "above_amount", "knockout"], id="every reason"),
    pytest.param("accept", "guarantee", "150000", None, ("knockout:amount_above_cap",), [],
                 id="accept to guarantee lowers exposure: final at once"),
    pytest.param("accept", "refuse", "150000", None, ("knockout:amount_above_cap",), [],
                 id="accept to refuse lowers exposure: final at once"),
    pytest.param("guarantee", "refuse", "25000", None, (), [], id="guarantee to refuse: final at once"),
]
# fmt: on


@pytest.mark.parametrize(("current", "target", "amount", "limit", "rules", "reasons"), CASES)
def test_an_override_waits_for_four_eyes_exactly_when_it_raises_exposure(
    client, analyst, champion, marketplace, subscribed, current, target, amount, limit, rules, reasons
):
    dossier = dossier_given(marketplace, decision=current, amount=amount, limit=limit, rules=rules)
    login(client, analyst)

    response = client.post(override_url(dossier), override_form(target))

    assert response.status_code == 302, response.content.decode()[:2000]
    override = Override.objects.get()
    assert override.approval_reasons == reasons
    assert override.reason_code.code == "guarantee_obtained" and override.reason == REASON
    dossier.refresh_from_db()
    if reasons:
        assert override.status == Override.Status.PENDING
        assert (dossier.decision, dossier.decision_overridden) == (current, False)
        assert deliveries() == []
    else:
        assert override.status == Override.Status.FINAL
        assert (dossier.decision, dossier.decision_overridden) == (target, True)
        assert len(deliveries()) == 1


def test_the_approval_amount_is_a_setting(champion, marketplace, settings):
    dossier = dossier_given(marketplace, decision="guarantee", amount="150000", limit="500000")
    score = dossier.scores.get()

    assert override_needs_approval(dossier, score, "accept") == ["above_amount"]
    settings.OVERRIDE_APPROVAL_AMOUNT = 200_000
    assert override_needs_approval(dossier, score, "accept") == []


# --- a pending override changes nothing until a second senior analyst approves it -------------------------


def test_a_pending_override_leaves_the_decision_in_force_tells_the_partner_nothing_and_shows_who_asked(
    client, analyst, refused
):
    login(client, analyst)

    response = client.post(override_url(refused), override_form("accept"), follow=True)

    assert response.status_code == 200
    body = response.content.decode()
    assert "Override recorded: it awaits the approval of another senior analyst." in body
    override = Override.objects.get()
    assert (override.status, override.decided_by, override.from_decision, override.to_decision) == (
        "pending",
        analyst,
        "refuse",
        "accept",
    )
    refused.refresh_from_db()
    assert refused.decision == "refuse" and not refused.decision_overridden
    assert f'data-testid="decision">{escape(refused.get_decision_display())}<' in body
    assert 'data-testid="pending-override"' in body and "Override awaiting approval" in body
    assert f"<strong>{analyst.username}</strong> asked on" in body
    assert "Guarantee or surety obtained" in body  # the code's label, in the page's language
    assert 'data-testid="review-form"' not in body  # an analyst cannot approve
    assert 'data-testid="override-form"' not in body  # one pending override at a time
    assert deliveries() == []
    event = AuditEvent.objects.get(action="dossier.override_requested")
    assert event.actor_user == analyst and event.object_id == str(refused.pk)
    assert event.before == {"decision": "refuse", "overridden": False}
    assert event.after == {
        "to_decision": "accept",
        "reason_code": "guarantee_obtained",
        "approval_reasons": ["refuse_to_grant", "above_recommended_limit"],
        "override_id": override.pk,
    }
    assert "dossier.overridden" not in audit_actions(refused)


def test_a_senior_analyst_other_than_the_author_sees_the_review_form(client, senior, pending):
    login(client, senior)
    body = client.get(detail_url(pending.dossier)).content.decode()
    assert 'data-testid="review-form"' in body
    assert review_url(pending, "approve") in body and review_url(pending, "reject") in body


def test_approval_by_another_senior_analyst_puts_the_override_in_force_and_tells_the_partner_once(
    client, senior, analyst, pending
):
    login(client, senior)

    response = client.post(review_url(pending, "approve"), {"note": "  Guarantee seen, signed.  "}, follow=True)

    assert response.status_code == 200
    assert response.redirect_chain == [(detail_url(pending.dossier), 302)]
    pending.refresh_from_db()
    assert (pending.status, pending.reviewed_by, pending.review_note) == ("approved", senior, "Guarantee seen, signed.")
    assert pending.reviewed_at is not None
    dossier = Dossier.objects.get(pk=pending.dossier_id)
    assert (dossier.decision, dossier.decision_overridden) == ("accept", True)

    (delivery,) = deliveries()
    assert delivery.payload["type"] == "decision.overridden"
    assert delivery.payload["data"] == {
        "id": str(dossier.pk),
        "decision": "accept",
        "previous_decision": "refuse",
        "reason_code": "guarantee_obtained",
        "overridden_at": pending.reviewed_at.isoformat(),
        "four_eyes": True,
        "approved_by_role": "senior_analyst",
    }
    sent = str(delivery.payload)
    assert analyst.username not in sent and senior.username not in sent and REASON not in sent

    event = AuditEvent.objects.get(action="dossier.override_approved")
    assert event.actor_user == senior
    assert event.before == {"decision": "refuse", "overridden": False}
    assert event.after["decision"] == "accept" and event.after["overridden"] is True
    assert event.after["override_id"] == pending.pk and "note" not in event.after  # texts stay encrypted

    body = response.content.decode()
    assert "Override approved: now in force." in body
    assert f'data-testid="decision">{escape(dossier.get_decision_display())}<' in body
    assert 'data-testid="pending-override"' not in body
    assert f"Approved by <strong>{senior.username}</strong>" in body and "Guarantee seen, signed." in body


def test_rejection_leaves_the_decision_in_force_is_audited_and_shown(client, senior, pending):
    login(client, senior)

    response = client.post(review_url(pending, "reject"), {"note": "No guarantee on file."}, follow=True)

    assert response.status_code == 200
    pending.refresh_from_db()
    assert (pending.status, pending.reviewed_by, pending.review_note) == ("rejected", senior, "No guarantee on file.")
    dossier = Dossier.objects.get(pk=pending.dossier_id)
    assert (dossier.decision, dossier.decision_overridden) == ("refuse", False)
    assert deliveries() == []
    event = AuditEvent.objects.get(action="dossier.override_rejected")
    assert event.actor_user == senior
    assert event.before == {"override_id": pending.pk, "status": "pending", "decision": "refuse"}
    assert event.after == {
        "override_id": pending.pk,
        "status": "rejected",
        "decision": "refuse",
        "rejected_decision": "accept",
    }
    body = response.content.decode()
    assert "Override rejected: the decision in force stays." in body
    assert f"Rejected by <strong>{senior.username}</strong>" in body and "No guarantee on file." in body
    assert 'data-testid="override-form"' in body  # the analyst may ask again


def test_a_senior_analyst_cannot_approve_his_own_override(client, senior, second_senior, refused):
    login(client, senior)
    assert client.post(override_url(refused), override_form("accept")).status_code == 302
    override = Override.objects.get()
    page = client.get(detail_url(refused)).content.decode()
    assert 'data-testid="review-form"' not in page
    assert "You asked for this override: another senior analyst approves or rejects it." in page

    for action in ("approve", "reject"):
        response = client.post(review_url(override, action), {"note": "Fine by me."})
        assert response.status_code == 400
        assert "You asked for this override: another senior analyst approves or rejects it (four eyes)." in (
            response.content.decode()
        )
    override.refresh_from_db()
    assert override.status == "pending" and override.reviewed_by is None
    assert Dossier.objects.get(pk=refused.pk).decision == "refuse"
    assert deliveries() == []
    assert not {"dossier.override_approved", "dossier.override_rejected"} & set(audit_actions(refused))

    # The second senior analyst may.
    client.logout()
    login(client, second_senior)
    assert client.post(review_url(override, "approve"), {"note": "Four eyes."}).status_code == 302
    assert Dossier.objects.get(pk=refused.pk).decision == "accept" and len(deliveries()) == 1


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_an_analyst_cannot_approve_or_reject_at_all(client, analyst, reference_data, pending, action):
    other = _user("bob.analyst", ANALYST)
    for user in (analyst, other):
        login(client, user)
        assert client.post(review_url(pending, action), {"note": "Looks fine."}).status_code == 403
    pending.refresh_from_db()
    assert pending.status == "pending" and deliveries() == []


def test_a_review_note_is_required(client, senior, pending):
    login(client, senior)
    response = client.post(review_url(pending, "approve"), {"note": "   "})
    assert response.status_code == 400
    assert "Approving or rejecting an override takes a note." in response.content.decode()
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_an_override_already_reviewed_cannot_be_reviewed_again(client, senior, second_senior, pending):
    login(client, senior)
    assert client.post(review_url(pending, "reject"), {"note": "No."}).status_code == 302
    client.logout()
    login(client, second_senior)
    response = client.post(review_url(pending, "approve"), {"note": "Yes."})
    assert response.status_code == 400
    assert "This override no longer awaits approval (Rejected)." in response.content.decode()
    assert Dossier.objects.get(pk=pending.dossier_id).decision == "refuse" and deliveries() == []


def test_a_second_override_while_one_awaits_approval_is_refused_with_a_clear_error(client, senior, pending):
    login(client, senior)
    response = client.post(override_url(pending.dossier), override_form("guarantee"))
    assert response.status_code == 400
    assert (
        "An override of this dossier already awaits approval: a senior analyst approves or rejects it first."
        in response.content.decode()
    )
    assert Override.objects.count() == 1


# --- overrides that are final at once -----------------------------------------------------------------------


def test_an_override_that_lowers_exposure_is_final_at_once_and_tells_the_partner(
    client, analyst, champion, marketplace, subscribed
):
    dossier = dossier_given(marketplace, decision="accept", amount="250000", limit="300000")
    login(client, analyst)

    response = client.post(override_url(dossier), override_form("refuse", code="adverse_information"), follow=True)

    assert "Decision overridden." in response.content.decode()
    override = Override.objects.get()
    assert (override.status, override.approval_reasons, override.reviewed_by) == ("final", [], None)
    dossier.refresh_from_db()
    assert (dossier.decision, dossier.decision_overridden) == ("refuse", True)
    (delivery,) = deliveries()
    assert delivery.payload["data"] == {
        "id": str(dossier.pk),
        "decision": "refuse",
        "previous_decision": "accept",
        "reason_code": "adverse_information",
        "overridden_at": override.created_at.isoformat(),
        "four_eyes": False,
        "approved_by_role": None,
    }
    event = AuditEvent.objects.get(action="dossier.overridden")
    assert event.before == {"decision": "accept", "overridden": False}
    assert event.after == {
        "decision": "refuse",
        "overridden": True,
        "reason_code": "adverse_information",
        "override_id": override.pk,
    }


def test_no_event_is_written_for_a_partner_without_a_subscribed_endpoint(client, analyst, champion, marketplace):
    dossier = dossier_given(marketplace, decision="accept")
    login(client, analyst)
    assert client.post(override_url(dossier), override_form("refuse")).status_code == 302
    assert Dossier.objects.get(pk=dossier.pk).decision == "refuse" and deliveries() == []


# --- reason codes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"decision": "refuse", "reason": REASON}, id="no reason code"),
        pytest.param({"decision": "refuse", "reason_code": "", "reason": REASON}, id="blank reason code"),
        pytest.param({"decision": "refuse", "reason_code": "987654", "reason": REASON}, id="unknown reason code"),
    ],
)
def test_an_override_without_a_reason_code_is_refused_and_nothing_is_stored(
    client, analyst, champion, marketplace, subscribed, data
):
    dossier = dossier_given(marketplace, decision="accept")
    login(client, analyst)
    events_before = AuditEvent.objects.count()

    response = client.post(override_url(dossier), data)

    assert response.status_code == 400
    body = response.content.decode()
    assert "Choose a reason code from the list." in body and 'class="errorlist' in body
    assert not Override.objects.exists() and AuditEvent.objects.count() == events_before
    assert Dossier.objects.get(pk=dossier.pk).decision == "accept" and deliveries() == []


def test_an_inactive_reason_code_is_not_offered_and_is_refused(client, analyst, champion, marketplace):
    dossier = dossier_given(marketplace, decision="accept")
    retired = reason_code("sector_knowledge")
    retired.is_active = False
    retired.save(update_fields=["is_active"])
    login(client, analyst)

    page = client.get(detail_url(dossier)).content.decode()
    response = client.post(override_url(dossier), override_form("refuse", code="sector_knowledge"))

    assert f'value="{retired.pk}"' not in page and f'value="{reason_code("data_error").pk}"' in page
    assert response.status_code == 400 and not Override.objects.exists()


def test_the_reason_code_is_labelled_in_the_pages_language(client, analyst, champion, marketplace):
    dossier = dossier_given(marketplace, decision="accept")
    login(client, analyst)
    reason_code()

    english = client.get(detail_url(dossier), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    client.cookies["django_language"] = "fr"
    french = client.get(detail_url(dossier), HTTP_ACCEPT_LANGUAGE="fr").content.decode()

    assert ">Guarantee or surety obtained<" in english and ">Garantie ou caution obtenue<" not in english
    assert ">Garantie ou caution obtenue<" in french


def test_the_service_takes_a_reason_code_by_its_code(analyst, champion, marketplace):
    dossier = dossier_given(marketplace, decision="accept")
    reason_code()
    override = dossier_override(dossier=dossier, decision="refuse", reason_code="data_error", reason="X", user=analyst)
    assert override.reason_code.code == "data_error" and override.status == "final"


# --- the permission matrix of the override views ------------------------------------------------------------

ACTORS = ("anonymous", "outsider", "auditor", "analyst", "senior", "admin")

# fmt: off
MATRIX = {
    #                                  anonymous outsider auditor analyst senior admin
    ("override", "dossier"):          (302,      403,     403,    400,    400,   403),
    ("override", "unknown"):          (302,      403,     403,    404,    404,   403),
    ("approve", "dossier"):           (302,      403,     403,    403,    400,   403),
    ("approve", "unknown"):           (302,      403,     403,    403,    404,   403),
    ("approve", "unknown override"):  (302,      403,     403,    403,    404,   403),
    ("reject", "dossier"):            (302,      403,     403,    403,    400,   403),
    ("reject", "unknown"):            (302,      403,     403,    403,    404,   403),
    ("reject", "unknown override"):   (302,      403,     403,    403,    404,   403),
}
# fmt: on


def _matrix_url(view: str, target: str, override: Override) -> str:
    if view == "override":
        return reverse("dossiers:override", args=[UNKNOWN_ID if target == "unknown" else override.dossier_id])
    dossier = UNKNOWN_ID if target == "unknown" else override.dossier_id
    pk = 987654 if target == "unknown override" else override.pk
    return reverse(f"dossiers:override-{view}", args=[dossier, pk])


@pytest.mark.parametrize(
    ("view", "target", "actor", "expected"),
    [
        pytest.param(view, target, actor, status, id=f"POST {view} {target} as {actor} -> {status}")
        for (view, target), statuses in MATRIX.items()
        for actor, status in zip(ACTORS, statuses, strict=True)
    ],
)
def test_who_may_override_approve_and_reject(client, request, pending, view, target, actor, expected):
    """An empty form: 400 tells "let in, the form said no" from 403 "kept out"; the role is checked before the id."""
    url = _matrix_url(view, target, pending)
    if actor != "anonymous":
        fixture = {"outsider": "outsider", "auditor": "auditor", "analyst": "analyst", "senior": "senior"}
        user = request.getfixturevalue(fixture.get(actor, "admin_user"))
        login(client, user)
    counts = (Override.objects.count(), AuditEvent.objects.count(), WebhookDelivery.objects.count())

    response = client.post(url, {})

    assert response.status_code == expected
    if expected == 302:
        assert response["Location"].startswith(f"{reverse('login')}?next=")
    if expected == 400:
        assert b"<form" in response.content and b"errorlist" in response.content
    assert (Override.objects.count(), AuditEvent.objects.count(), WebhookDelivery.objects.count()) == counts
    pending.refresh_from_db()
    assert pending.status == "pending"


@pytest.mark.parametrize("name", ["dossiers:override-approve", "dossiers:override-reject"])
def test_the_review_endpoints_only_accept_post(client, senior, pending, name):
    login(client, senior)
    assert client.get(reverse(name, args=[pending.dossier_id, pending.pk])).status_code == 405


def test_an_override_of_another_dossier_is_not_found_under_this_one(client, senior, champion, marketplace, pending):
    other = dossier_given(marketplace, decision="refuse")
    login(client, senior)
    url = reverse("dossiers:override-approve", args=[other.pk, pending.pk])
    assert client.post(url, {"note": "Wrong door."}).status_code == 404
    pending.refresh_from_db()
    assert pending.status == "pending"


# --- the reason codes in the admin ---------------------------------------------------------------------------


def test_an_admin_keeps_the_reason_codes_and_cannot_delete_one_in_use(client, admin_user, analyst, pending):
    used, unused = reason_code("guarantee_obtained"), reason_code("group_support")
    login(client, admin_user)

    listing = client.get(reverse("admin:dossiers_overridereason_changelist"))
    assert listing.status_code == 200 and "guarantee_obtained" in listing.content.decode()
    added = client.post(
        reverse("admin:dossiers_overridereason_add"),
        {
            "code": "court_ruling",
            "label_fr": "Décision de justice",
            "label_en": "Court ruling",
            "position": 20,
            "is_active": "on",
        },
    )
    assert added.status_code == 302 and OverrideReason.objects.get(code="court_ruling").is_active

    delete_used = reverse("admin:dossiers_overridereason_delete", args=[used.pk])
    assert client.get(delete_used).status_code == 403
    assert client.post(delete_used, {"post": "yes"}).status_code == 403
    assert OverrideReason.objects.filter(pk=used.pk).exists()
    deleted = client.post(reverse("admin:dossiers_overridereason_delete", args=[unused.pk]), {"post": "yes"})
    assert deleted.status_code == 302 and not OverrideReason.objects.filter(pk=unused.pk).exists()

    # Deactivated, a code in use stays on its overrides and leaves the form.
    response = client.post(
        reverse("admin:dossiers_overridereason_changelist"),
        {"action": "deactivate", "_selected_action": [used.pk]},
    )
    assert response.status_code == 302
    used.refresh_from_db()
    assert not used.is_active and Override.objects.get().reason_code == used
    change = client.get(reverse("admin:dossiers_overridereason_change", args=[used.pk])).content.decode()
    assert 'name="code"' not in change  # a code in use is not renamed
