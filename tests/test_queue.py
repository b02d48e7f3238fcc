"""The queue an analyst works: search, filters, sort, pages, age, tabs with counts, and taking a dossier.

Everything goes through HTTP as the analyst's browser would, except the setting up: dossiers are created and
scored by the real services, then given the decision, band or date a row needs with a plain update.
"""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import escape

from dossiers import assignment, selectors
from dossiers.models import Company, Dossier, Override
from dossiers.selectors import TAB_COUNT_CAP
from dossiers.services import dossier_create, dossier_create_individual, dossier_score
from dossiers.views import queue as queue_views
from dossiers.views.queue import age_label
from riskoffice.audit import Actor
from riskoffice.models import AuditEvent
from scoring.model.synthetic import siren_from_number
from scoring.models import Score
from tests.conftest import _user, login, make_partner_client

pytestmark = pytest.mark.django_db

QUEUE = "/dossiers/"
ROW = re.compile(r'<tr data-dossier="([0-9a-f-]{36})"')


def siren(n: int) -> str:
    return siren_from_number(41_000_000 + n)


def listed(client, params: dict | None = None) -> list[str]:
    """The ids of the dossiers the queue lists for these query parameters, in order."""
    response = client.get(QUEUE, params or {})
    assert response.status_code == 200, response.content[:300]
    return ROW.findall(response.content.decode())


def ids(*dossiers: Dossier) -> list[str]:
    return [str(d.pk) for d in dossiers]


def make(
    partner_client,
    n: int,
    *,
    amount: str = "25000",
    scored: bool = True,
    name: str = "",
    received: datetime | None = None,
    decision: str | None = None,
    band: str | None = None,
    recommendation: str | None = None,
    score: int | None = None,
) -> Dossier:
    """A B2B dossier made through the services, then shaped with updates for what the test looks at."""
    dossier = dossier_create(
        partner=partner_client.partner,
        siren=siren(n),
        requested_amount=Decimal(amount),
        bank_tokens=["t"],
        actor=Actor(client=partner_client.api_client),
    )
    if scored:
        assert dossier_score(dossier_id=dossier.pk) is not None
    changes = {}
    if name:
        changes["applicant_name"] = name
    if received:
        changes["created_at"] = received
    if decision is not None:
        changes["decision"] = decision
    if changes:
        Dossier.objects.filter(pk=dossier.pk).update(**changes)
    score_changes = {
        k: v for k, v in {"band": band, "decision": recommendation, "score": score}.items() if v is not None
    }
    if score_changes:
        Score.objects.filter(dossier=dossier).update(**score_changes)
    dossier.refresh_from_db()
    return dossier


@pytest.fixture
def partner(champion, marketplace):
    return marketplace


# --- who may come in ----------------------------------------------------------------------------------------


def test_an_anonymous_visitor_is_sent_to_log_in_and_cannot_take(client, partner):
    dossier = make(partner, 1)
    assert client.get(QUEUE)["Location"].startswith("/login/")
    response = client.post(f"/dossiers/{dossier.pk}/take")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert Dossier.objects.get(pk=dossier.pk).assigned_to is None


@pytest.mark.parametrize("action", ["take", "release"])
def test_an_outsider_an_auditor_and_an_admin_cannot_take_or_release(client, partner, outsider, auditor, action):
    admin = _user("ada.admin", "admin")
    dossier = make(partner, 1)
    events = AuditEvent.objects.count()
    for user in (outsider, auditor, admin):
        login(client, user)
        assert client.post(f"/dossiers/{dossier.pk}/{action}").status_code == 403, user
    assert Dossier.objects.get(pk=dossier.pk).assigned_to is None
    assert AuditEvent.objects.count() == events


def test_taking_an_unknown_dossier_is_a_404_and_get_is_not_allowed(client, analyst, partner):
    dossier = make(partner, 1)
    login(client, analyst)
    assert client.post("/dossiers/00000000-0000-4000-8000-000000000000/take").status_code == 404
    assert client.post("/dossiers/not-a-uuid/take").status_code == 404
    assert client.get(f"/dossiers/{dossier.pk}/take").status_code == 405


def test_every_back_office_role_reads_the_queue_and_an_outsider_is_forbidden(
    client, partner, analyst, senior, auditor, outsider
):
    dossier = make(partner, 1, name="Boulangerie Marchand")
    for user in (analyst, senior, auditor, _user("ada.admin", "admin")):
        login(client, user)
        assert listed(client) == ids(dossier), user
    login(client, outsider)
    response = client.get(QUEUE)
    assert response.status_code == 403 and "Boulangerie Marchand" not in response.content.decode()


# --- search ---------------------------------------------------------------------------------------------------


def test_search_by_siren_with_or_without_spaces(client, analyst, partner):
    wanted, other = make(partner, 1), make(partner, 2)
    login(client, analyst)
    number = wanted.company.siren
    assert listed(client, {"q": number}) == ids(wanted)
    assert listed(client, {"q": f"{number[:3]} {number[3:6]} {number[6:]}"}) == ids(wanted)
    assert other.pk not in listed(client, {"q": number})


def test_search_by_name_looks_in_the_applicant_name_and_the_company_name(client, analyst, partner):
    by_applicant = make(partner, 1, name="Boulangerie Marchand SARL")
    by_company = make(partner, 2, name="")
    Company.objects.filter(pk=by_company.company_id).update(name="Transports Marchand")
    make(partner, 3, name="Garage Dupont")
    login(client, analyst)
    assert set(listed(client, {"q": "marchand"})) == set(ids(by_applicant, by_company))
    assert listed(client, {"q": "boulangerie"}) == ids(by_applicant)


def test_search_by_an_individuals_reference_or_the_start_of_a_dossier_number(client, analyst, partner):
    person = dossier_create_individual(
        partner=partner.partner,
        reference="C-1042",
        requested_amount=Decimal("900"),
        bank_tokens=[],
        actor=Actor(client=partner.api_client),
    )
    company = make(partner, 1)
    login(client, analyst)
    assert listed(client, {"q": "C-1042"}) == ids(person)
    assert listed(client, {"q": "c-1042"}) == ids(person)
    assert listed(client, {"q": str(company.pk)[:8]}) == ids(company)
    assert listed(client, {"q": str(company.pk)}) == ids(company)


# --- filters --------------------------------------------------------------------------------------------------


def test_filter_by_status(client, analyst, partner):
    scored, pending = make(partner, 1), make(partner, 2, scored=False)
    Dossier.objects.filter(pk=make(partner, 3, scored=False).pk).update(status=Dossier.Status.FAILED)
    login(client, analyst)
    assert listed(client, {"status": "scored"}) == ids(scored)
    assert listed(client, {"status": "pending"}) == ids(pending)


def test_filter_by_recommendation_the_latest_scores_decision(client, analyst, partner):
    accept = make(partner, 1, recommendation="accept")
    refuse = make(partner, 2, recommendation="refuse")
    login(client, analyst)
    assert listed(client, {"recommendation": "accept"}) == ids(accept)
    assert listed(client, {"recommendation": "refuse"}) == ids(refuse)


def test_filter_by_the_decision_in_force_refer_included(client, analyst, partner):
    refer = make(partner, 1, decision="refer")
    refuse = make(partner, 2, decision="refuse")
    login(client, analyst)
    assert listed(client, {"decision": "refer"}) == ids(refer)
    assert listed(client, {"decision": "refuse"}) == ids(refuse)


def test_filter_by_band(client, analyst, partner):
    a, d = make(partner, 1, band="A"), make(partner, 2, band="D")
    login(client, analyst)
    assert listed(client, {"band": "A"}) == ids(a)
    assert listed(client, {"band": "D"}) == ids(d)
    assert listed(client, {"band": "E"}) == []


def test_filter_by_segment(client, analyst, partner):
    company = make(partner, 1)
    person = dossier_create_individual(
        partner=partner.partner,
        reference="C-7",
        requested_amount=Decimal("900"),
        bank_tokens=[],
        actor=Actor(client=partner.api_client),
    )
    login(client, analyst)
    assert listed(client, {"segment": "b2b"}) == ids(company)
    assert listed(client, {"segment": "b2c"}) == ids(person)


def test_filter_by_partner(client, analyst, partner):
    lender = make_partner_client("Other Lender", ["scores:write"])
    ours, theirs = make(partner, 1), make(lender, 2)
    login(client, analyst)
    assert listed(client, {"partner": partner.partner.pk}) == ids(ours)
    assert listed(client, {"partner": lender.partner.pk}) == ids(theirs)


def test_filter_awaiting_approval(client, analyst, senior, partner):
    waiting, plain = make(partner, 1, decision="refuse"), make(partner, 2)
    Override.objects.create(
        dossier=waiting,
        from_decision="refuse",
        to_decision="accept",
        reason="Guarantor signed.",
        decided_by=analyst,
        status=Override.Status.PENDING,
    )
    login(client, senior)
    assert listed(client, {"awaiting": "on"}) == ids(waiting)
    assert plain.pk not in listed(client, {"awaiting": "on"})


def test_filter_assigned_to_me(client, analyst, senior, partner):
    mine, theirs, nobodys = make(partner, 1), make(partner, 2), make(partner, 3)
    assignment.dossier_take(dossier=mine, user=analyst)
    assignment.dossier_take(dossier=theirs, user=senior)
    login(client, analyst)
    assert listed(client, {"mine": "on"}) == ids(mine)
    assert nobodys.pk not in listed(client, {"mine": "on"})


def test_filter_by_received_dates_both_ends_included(client, analyst, partner):
    now = timezone.localtime()
    old = make(partner, 1, received=now - timedelta(days=30))
    mid = make(partner, 2, received=now - timedelta(days=10))
    new = make(partner, 3, received=now)
    login(client, analyst)
    day = lambda d: timezone.localtime(d.created_at).date().isoformat()  # noqa: E731
    assert listed(client, {"received_from": day(mid)}) == ids(new, mid)
    assert listed(client, {"received_to": day(mid)}) == ids(mid, old)
    assert listed(client, {"received_from": day(mid), "received_to": day(mid)}) == ids(mid)


def test_filter_by_amount_range(client, analyst, partner):
    small, medium, large = (
        make(partner, 1, amount="5000"),
        make(partner, 2, amount="25000"),
        make(partner, 3, amount="90000"),
    )
    login(client, analyst)
    assert set(listed(client, {"amount_min": "25000"})) == set(ids(medium, large))
    assert set(listed(client, {"amount_max": "25 000"})) == set(ids(small, medium))
    assert listed(client, {"amount_min": "10000", "amount_max": "50000,00"}) == ids(medium)


def test_filters_combine(client, analyst, partner):
    wanted = make(partner, 1, amount="60000", band="C", name="Marchand")
    make(partner, 2, amount="60000", band="A", name="Marchand")
    make(partner, 3, amount="1000", band="C", name="Marchand")
    login(client, analyst)
    assert listed(client, {"q": "marchand", "band": "C", "amount_min": "50000", "status": "scored"}) == ids(wanted)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"amount_min": "lots"}, "Amount from"),
        ({"amount_max": "-5"}, "Amount to"),
        ({"received_from": "31/02/2025"}, "Received from"),
        ({"received_to": "yesterday"}, "Received to"),
        ({"band": "Z"}, "Band"),
        ({"status": "lost"}, "Status"),
        ({"partner": "abc"}, "Partner"),
        ({"sort": "password"}, "Sort"),
        ({"size": "1000000"}, "Per page"),
        ({"tab": "everything"}, "Tab"),
    ],
)
def test_a_bad_filter_value_is_ignored_with_a_visible_note_never_a_500(client, analyst, partner, params, field):
    dossier = make(partner, 1)
    login(client, analyst)
    response = client.get(QUEUE, params)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="filter-notes"' in body
    assert f"{field}" in body.split('data-testid="filter-notes"')[1].split("</div>")[0]
    assert ROW.findall(body) == ids(dossier)  # the bad filter is dropped: the queue is shown unfiltered


def test_a_good_filter_still_applies_beside_a_bad_one(client, analyst, partner):
    wanted, _other = make(partner, 1, band="B"), make(partner, 2, band="D")
    login(client, analyst)
    assert listed(client, {"band": "B", "amount_min": "lots"}) == ids(wanted)


# --- sort, pages, age -----------------------------------------------------------------------------------------


def test_sort_by_amount_score_and_received_in_both_directions(client, analyst, partner):
    now = timezone.now()
    first = make(partner, 1, amount="50000", score=700, received=now - timedelta(hours=3))
    second = make(partner, 2, amount="10000", score=300, received=now - timedelta(hours=2))
    third = make(partner, 3, amount="90000", score=500, received=now - timedelta(hours=1))
    login(client, analyst)
    assert listed(client) == ids(third, second, first)  # newest first by default
    assert listed(client, {"sort": "received"}) == ids(first, second, third)
    assert listed(client, {"sort": "-amount"}) == ids(third, first, second)
    assert listed(client, {"sort": "amount"}) == ids(second, first, third)
    assert listed(client, {"sort": "score"}) == ids(second, third, first)
    assert listed(client, {"sort": "-score"}) == ids(first, third, second)
    assert listed(client, {"sort": "-age"}) == ids(first, second, third)  # longest waiting first
    assert listed(client, {"sort": "age"}) == ids(third, second, first)


def test_only_whitelisted_sorts_are_used(client, analyst, partner):
    make(partner, 1)
    login(client, analyst)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(QUEUE, {"sort": "bank_tokens_json"})
    assert response.status_code == 200 and 'data-testid="filter-notes"' in response.content.decode()
    queue_queries = [q["sql"] for q in captured.captured_queries if "accesslog" not in q["sql"]]  # not the log
    assert not any("bank_tokens_json" in sql.split("ORDER BY")[-1] for sql in queue_queries)


def test_pages_keep_the_filters_and_the_page_size_is_selectable(client, analyst, partner, monkeypatch):
    for n in range(4):
        make(partner, n, band="C", amount="30000")
    make(partner, 9, band="A")
    monkeypatch.setattr(queue_views, "PAGE_SIZE", 2)
    login(client, analyst)
    body = client.get(QUEUE, {"band": "C", "sort": "-amount"}).content.decode()
    assert len(ROW.findall(body)) == 2
    older = re.search(r'<a href="(\?[^"]*)">Older →</a>', body) or re.search(r'<a href="(\?[^"]*)">[^<]*→</a>', body)
    assert older, body[-1500:]
    link = older.group(1).replace("&amp;", "&")
    assert "band=C" in link and "sort=-amount" in link and "page=2" in link
    second = client.get(QUEUE + link).content.decode()
    assert len(ROW.findall(second)) == 2
    assert set(ROW.findall(body)).isdisjoint(ROW.findall(second))

    monkeypatch.setattr(queue_views, "PAGE_SIZE", 50)
    for n in range(10, 37):
        make(partner, n, scored=False)
    assert len(listed(client, {"size": "25"})) == 25
    assert len(listed(client, {"size": "50"})) == 32


@pytest.mark.parametrize(
    ("waited", "label"),
    [(timedelta(minutes=5), "5 min"), (timedelta(hours=2, minutes=10), "2 h"), (timedelta(days=3, hours=1), "3 d")],
)
def test_the_age_reads_in_minutes_hours_or_days(waited, label):
    now = timezone.now()
    assert age_label(now - waited, now) == label


def test_the_queue_shows_each_dossiers_age(client, analyst, partner):
    make(partner, 1, received=timezone.now() - timedelta(days=3, hours=2))
    login(client, analyst)
    body = client.get(QUEUE).content.decode()
    assert re.search(r"data-testid=\"age\">3 d<", body), body


def test_the_queue_links_the_company_page(client, analyst, partner):
    dossier = make(partner, 1, name="Boulangerie Marchand")
    login(client, analyst)
    body = client.get(QUEUE).content.decode()
    assert f'href="/dossiers/companies/{dossier.company.siren}/"' in body
    assert f'href="/dossiers/{dossier.pk}/">{escape("Boulangerie Marchand")}</a>' in body


# --- tabs and their counts ------------------------------------------------------------------------------------


def test_each_tab_counts_its_dossiers_in_one_query_and_lists_them(client, analyst, senior, partner):
    pending = make(partner, 1, scored=False)
    failed = make(partner, 2, scored=False)
    Dossier.objects.filter(pk=failed.pk).update(status=Dossier.Status.FAILED)
    refer = make(partner, 3, decision="refer")
    waiting = make(partner, 4, decision="refuse")
    Override.objects.create(
        dossier=waiting,
        from_decision="refuse",
        to_decision="accept",
        reason="Collateral.",
        decided_by=senior,
        status=Override.Status.PENDING,
    )
    mine = make(partner, 5)
    assignment.dossier_take(dossier=mine, user=analyst)
    history = make(partner, 6)
    Dossier.objects.filter(pk=history.pk).update(origin=Dossier.Origin.HISTORY)
    login(client, analyst)

    with CaptureQueriesContext(connection) as captured:
        body = client.get(QUEUE).content.decode()
    # (The navigation's unread-alert count is capped too, and counts alerts, not dossiers.)
    counted = [
        q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper() and "alerts_alert" not in q["sql"]
    ]
    assert len(counted) == 1 and counted[0].count(f"LIMIT {TAB_COUNT_CAP + 1}") == 6

    counts = dict(re.findall(r'data-testid="count-([a-z_]+)">([^<]+)<', body))
    assert counts == {
        "all": "5",
        "pending": "1",
        "to_decide": "2",
        "awaiting_approval": "1",
        "mine": "1",
        "failed": "1",
    }
    assert listed(client, {"tab": "pending"}) == ids(pending)
    assert listed(client, {"tab": "failed"}) == ids(failed)
    assert set(listed(client, {"tab": "to_decide"})) == set(ids(refer, waiting))
    assert listed(client, {"tab": "awaiting_approval"}) == ids(waiting)
    assert listed(client, {"tab": "mine"}) == ids(mine)
    assert history.pk not in listed(client)


def test_a_tab_count_stops_at_its_cap(client, analyst, partner, monkeypatch):
    for n in range(3):
        make(partner, n, scored=False)
    monkeypatch.setattr(selectors, "TAB_COUNT_CAP", 2)
    login(client, analyst)
    body = client.get(QUEUE).content.decode()
    assert 'data-testid="count-all">2+<' in body and 'data-testid="count-pending">2+<' in body


# --- take and release -----------------------------------------------------------------------------------------


def test_an_analyst_takes_a_dossier_from_the_queue_and_it_is_audited(client, analyst, partner):
    dossier = make(partner, 1)
    login(client, analyst)
    response = client.post(f"/dossiers/{dossier.pk}/take", {"next": "/dossiers/?band=C"})
    assert response.status_code == 302 and response["Location"] == "/dossiers/?band=C"
    dossier.refresh_from_db()
    assert dossier.assigned_to == analyst and dossier.assigned_at is not None
    event = AuditEvent.objects.get(action="dossier.assigned", object_id=str(dossier.pk))
    assert event.actor_user == analyst
    assert (event.before, event.after) == ({"assigned_to": None}, {"assigned_to": analyst.username})
    body = client.get(QUEUE).content.decode()
    assert f'data-testid="assignee">{analyst.username}<' in body
    assert f'action="/dossiers/{dossier.pk}/release"' in body


def test_taking_ones_own_dossier_again_changes_nothing(client, analyst, partner):
    dossier = make(partner, 1)
    login(client, analyst)
    client.post(f"/dossiers/{dossier.pk}/take")
    taken_at = Dossier.objects.get(pk=dossier.pk).assigned_at
    client.post(f"/dossiers/{dossier.pk}/take")
    assert Dossier.objects.get(pk=dossier.pk).assigned_at == taken_at
    assert AuditEvent.objects.filter(action="dossier.assigned").count() == 1


def test_a_dossier_another_analyst_took_cannot_be_taken_and_the_error_says_who(client, analyst, partner):
    bob = _user("bob.analyst", "analyst")
    dossier = make(partner, 1)
    assignment.dossier_take(dossier=dossier, user=bob)
    login(client, analyst)
    response = client.post(f"/dossiers/{dossier.pk}/take", follow=True)
    assert response.status_code == 200
    assert "bob.analyst already took this dossier" in response.content.decode()
    assert Dossier.objects.get(pk=dossier.pk).assigned_to == bob
    assert AuditEvent.objects.filter(action="dossier.assigned").count() == 1
    # Nor may the analyst release it.
    response = client.post(f"/dossiers/{dossier.pk}/release", follow=True)
    assert "bob.analyst holds this dossier" in response.content.decode()
    assert Dossier.objects.get(pk=dossier.pk).assigned_to == bob


def test_a_senior_analyst_may_reassign_a_dossier_to_themselves(client, analyst, senior, partner):
    dossier = make(partner, 1)
    assignment.dossier_take(dossier=dossier, user=analyst)
    login(client, senior)
    assert "Reassign to me" in client.get(QUEUE).content.decode()
    client.post(f"/dossiers/{dossier.pk}/take")
    assert Dossier.objects.get(pk=dossier.pk).assigned_to == senior
    event = AuditEvent.objects.filter(action="dossier.assigned").latest("id")
    assert (event.before, event.after) == ({"assigned_to": analyst.username}, {"assigned_to": senior.username})


def test_the_holder_releases_the_dossier_and_it_is_audited(client, analyst, partner):
    dossier = make(partner, 1)
    login(client, analyst)
    client.post(f"/dossiers/{dossier.pk}/take")
    response = client.post(f"/dossiers/{dossier.pk}/release")
    assert response.status_code == 302
    dossier.refresh_from_db()
    assert dossier.assigned_to is None and dossier.assigned_at is None
    event = AuditEvent.objects.get(action="dossier.released")
    assert (event.before, event.after) == ({"assigned_to": analyst.username}, {"assigned_to": None})


def test_releasing_a_dossier_nobody_holds_is_a_clear_error(client, analyst, partner):
    dossier = make(partner, 1)
    login(client, analyst)
    response = client.post(f"/dossiers/{dossier.pk}/release", follow=True)
    assert "not assigned to anyone" in response.content.decode()
    assert not AuditEvent.objects.filter(action="dossier.released").exists()


def test_the_back_link_after_taking_stays_on_this_site(client, analyst, partner):
    dossier = make(partner, 1)
    login(client, analyst)
    response = client.post(f"/dossiers/{dossier.pk}/take", {"next": "https://evil.example/"})
    assert response["Location"] == QUEUE


@pytest.mark.django_db(transaction=True)
def test_two_analysts_taking_the_same_dossier_at_once_one_wins(champion, marketplace, analyst):
    bob = _user("bob.analyst", "analyst")
    dossier = make(marketplace, 1)
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def take(user) -> None:
        try:
            barrier.wait(timeout=10)
            assignment.dossier_take(dossier=dossier, user=user)
            results[user.username] = "took"
        except assignment.DossierTakenByAnother:
            results[user.username] = "refused"
        finally:
            connections.close_all()

    threads = [threading.Thread(target=take, args=(user,)) for user in (analyst, bob)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results.values()) == ["refused", "took"]
    winner = next(name for name, result in results.items() if result == "took")
    assert Dossier.objects.get(pk=dossier.pk).assigned_to.username == winner
    assert AuditEvent.objects.filter(action="dossier.assigned").count() == 1
