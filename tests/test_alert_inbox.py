"""The analysts' alert inbox: what it lists, who may act, acknowledging, the unread count, and the e-mail."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core import mail
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts import notify
from alerts.inbox import BULK_MAX
from alerts.models import Alert, NegativeEvent
from dossiers.models import Company
from riskoffice.models import AuditEvent
from tests.conftest import _user, login

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(db) -> Company:
    return Company.objects.create(siren="552100554", name="ACME SA")


@pytest.fixture
def globex(db) -> Company:
    return Company.objects.create(siren="732829320", name="Globex SARL")


def score_drop(company: Company, *, key: str = "1", before: int = 712, after: int = 640, ago: int = 0) -> Alert:
    alert = Alert.objects.create(
        kind=Alert.Kind.SCORE_DROPPED,
        severity=Alert.Severity.CRITICAL,
        dedup_key=f"cscore:{key}",
        company=company,
        previous_score=before,
        score=after,
        previous_band="B",
        band="D",
    )
    if ago:
        Alert.objects.filter(pk=alert.pk).update(created_at=timezone.now() - timedelta(minutes=ago))
        alert.refresh_from_db()
    return alert


def band_change(company: Company, *, key: str = "2") -> Alert:
    return Alert.objects.create(
        kind=Alert.Kind.BAND_CHANGED,
        severity=Alert.Severity.WARNING,
        dedup_key=f"cscore:{key}",
        company=company,
        previous_score=650,
        score=630,
        previous_band="C",
        band="D",
    )


def insolvency(company: Company) -> Alert:
    event = NegativeEvent.objects.create(
        company=company, kind=NegativeEvent.Kind.INSOLVENCY_PROCEEDING, occurred_on=date(2026, 11, 2), source="bodacc"
    )
    return Alert.objects.create(
        kind=Alert.Kind.NEGATIVE_EVENT,
        severity=Alert.Severity.CRITICAL,
        dedup_key=f"event:{event.pk}",
        company=company,
        negative_event=event,
        event_kind=event.kind,
    )


def rows_of(response) -> list[int]:
    """The alert ids in the inbox table, in order."""
    import re

    return [int(pk) for pk in re.findall(r'data-alert="(\d+)"', response.content.decode())]


# --- reading the inbox --------------------------------------------------------------------------------------------


def test_the_inbox_lists_unread_alerts_newest_first_with_the_company_and_what_happened(client, analyst, acme, globex):
    old = score_drop(acme, ago=30)
    newer = band_change(globex)
    event = insolvency(acme)
    login(client, analyst)

    response = client.get("/alerts/")

    assert response.status_code == 200
    assert rows_of(response) == [event.pk, newer.pk, old.pk]
    html = response.content.decode()
    assert "ACME SA" in html and "552100554" in html and "Globex SARL" in html
    assert "score 712 → 640, band B → D" in html
    assert "band C → D" in html
    assert "Insolvency proceeding on 2026-11-02, reported by BODACC" in html


def test_acknowledged_alerts_leave_the_unread_list_and_come_after_the_unread_ones_in_all(client, analyst, senior, acme):
    seen = score_drop(acme, key="1")
    unseen = score_drop(acme, key="2", ago=60)
    Alert.objects.filter(pk=seen.pk).update(acknowledged_at=timezone.now(), acknowledged_by=senior)
    login(client, analyst)

    assert rows_of(client.get("/alerts/")) == [unseen.pk]
    everything = client.get("/alerts/?show=all")
    assert rows_of(everything) == [unseen.pk, seen.pk]
    assert "Acknowledged by sam.senior" in everything.content.decode()


def test_the_inbox_filters_by_kind_severity_and_company(client, analyst, acme, globex):
    drop = score_drop(acme)
    band = band_change(globex)
    event = insolvency(globex)
    login(client, analyst)

    assert rows_of(client.get("/alerts/?kind=band_changed")) == [band.pk]
    assert rows_of(client.get("/alerts/?severity=critical")) == [event.pk, drop.pk]
    assert rows_of(client.get("/alerts/?company=732829320")) == [event.pk, band.pk]


def test_bad_filter_values_are_named_and_ignored_never_a_500(client, analyst, acme):
    alert = score_drop(acme)
    login(client, analyst)

    response = client.get("/alerts/?kind=nope&severity=%00&show=maybe&size=7&page=-3&company=12ab")

    assert response.status_code == 200
    assert rows_of(response) == [alert.pk]
    notes = response.content.decode()
    for label in ("Kind ignored", "Severity ignored", "Show ignored", "Per page ignored", "SIREN ignored"):
        assert label in notes


def test_an_unknown_siren_filter_shows_no_alerts_and_says_so(client, analyst, acme):
    score_drop(acme)
    login(client, analyst)

    response = client.get("/alerts/?company=999999999")

    assert rows_of(response) == []
    assert "No company with this SIREN is on file." in response.content.decode()


def test_the_inbox_pages_by_seeking_and_its_queries_do_not_grow_with_the_page_size(client, analyst, acme, globex):
    for i in range(30):
        score_drop(acme if i % 2 else globex, key=str(i), ago=i)
    insolvency(acme)
    login(client, analyst)

    first = client.get("/alerts/?size=25")
    second = client.get("/alerts/?size=25&page=2")

    assert len(rows_of(first)) == 25 and "Older →" in first.content.decode()
    assert len(rows_of(second)) == 6 and "Older →" not in second.content.decode()
    with CaptureQueriesContext(connection) as small:
        client.get("/alerts/?size=25")
    with CaptureQueriesContext(connection) as large:
        client.get("/alerts/?size=100")
    assert len(small) == len(large), [q["sql"][:150] for q in large]
    assert len(large) <= 10, [q["sql"] for q in large]


def test_each_row_links_to_the_dossier_when_there_is_one_else_to_the_company(client, analyst, acme, committed_dossier):
    company = committed_dossier.company
    with_dossier = Alert.objects.create(
        kind=Alert.Kind.BAND_CHANGED,
        severity=Alert.Severity.WARNING,
        dedup_key="cscore:9",
        company=company,
        dossier=committed_dossier,
    )
    without = score_drop(acme)
    login(client, analyst)

    html = client.get("/alerts/").content.decode()

    row = html[html.index(f'data-alert="{with_dossier.pk}"') :]
    assert f'href="/dossiers/{committed_dossier.pk}/">Open the dossier' in row.split("</tr>")[0]
    row = html[html.index(f'data-alert="{without.pk}"') :]
    assert 'href="/dossiers/companies/552100554/">Open the dossier' in row.split("</tr>")[0]


# --- the unread count in the navigation ---------------------------------------------------------------------------


def unread_badge(response) -> str | None:
    import re

    found = re.search(r'data-testid="alerts-unread">(\d+)', response.content.decode())
    return found.group(1) if found else None


def test_analysts_and_senior_analysts_see_the_unread_count_in_the_navigation(client, analyst, senior, acme):
    score_drop(acme, key="1")
    score_drop(acme, key="2")
    for user in (analyst, senior):
        login(client, user)
        assert unread_badge(client.get("/dossiers/")) == "2"
        client.post("/logout/")


def test_auditors_and_admins_see_the_inbox_link_but_no_count_and_pay_no_query_for_it(client, auditor, admin_user, acme):
    score_drop(acme)
    for user in (auditor, admin_user):
        login(client, user)
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/dossiers/")
        assert 'data-testid="nav-alerts"' in response.content.decode()
        assert unread_badge(response) is None
        assert not [q for q in queries if "alerts_alert" in q["sql"]]
        client.post("/logout/")


def test_the_unread_count_is_one_query(client, analyst, acme):
    score_drop(acme)
    login(client, analyst)

    with CaptureQueriesContext(connection) as queries:
        client.get("/dossiers/")

    assert len([q for q in queries if "alerts_alert" in q["sql"]]) == 1


def test_beyond_ninety_nine_unread_alerts_the_count_reads_99_plus_and_counts_no_further(client, analyst, acme):
    Alert.objects.bulk_create(
        Alert(
            kind=Alert.Kind.SCORE_DROPPED, severity=Alert.Severity.CRITICAL, dedup_key=f"cscore:many-{i}", company=acme
        )
        for i in range(120)
    )
    login(client, analyst)

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/dossiers/")

    assert '<span class="badge" data-testid="alerts-unread">99+' in response.content.decode()
    (count,) = [q["sql"] for q in queries if "alerts_alert" in q["sql"]]
    assert "LIMIT 100" in count


# --- acknowledging ---------------------------------------------------------------------------------------------------


def test_an_analyst_acknowledges_an_alert_it_is_audited_and_the_count_drops(client, analyst, acme):
    alert = score_drop(acme, key="1")
    score_drop(acme, key="2")
    login(client, analyst)
    assert unread_badge(client.get("/alerts/")) == "2"

    response = client.post(f"/alerts/{alert.pk}/acknowledge/", {"next": "/alerts/?kind=score_dropped"}, follow=True)

    assert response.redirect_chain[-1][0] == "/alerts/?kind=score_dropped"
    assert "Alert acknowledged." in response.content.decode()
    assert unread_badge(response) == "1"
    alert.refresh_from_db()
    assert alert.acknowledged_by == analyst and alert.acknowledged_at is not None
    audit = AuditEvent.objects.get(action="alert.acknowledged", object_id=str(alert.pk))
    assert audit.actor_user == analyst and audit.before == {"acknowledged_at": None}


def test_an_alert_acknowledged_already_says_by_whom_and_stays_acknowledged_once(client, analyst, senior, acme):
    alert = score_drop(acme)
    login(client, senior)
    client.post(f"/alerts/{alert.pk}/acknowledge/")
    client.post("/logout/")
    login(client, analyst)

    response = client.post(f"/alerts/{alert.pk}/acknowledge/", follow=True)

    assert "This alert was already acknowledged by sam.senior." in response.content.decode()
    alert.refresh_from_db()
    assert alert.acknowledged_by == senior
    assert AuditEvent.objects.filter(action="alert.acknowledged").count() == 1


def test_an_unknown_or_malformed_alert_id_is_a_404(client, analyst):
    login(client, analyst)

    assert client.post("/alerts/999999/acknowledge/").status_code == 404
    assert client.post("/alerts/abc/acknowledge/").status_code == 404


def test_acknowledging_needs_a_post(client, analyst, acme):
    alert = score_drop(acme)
    login(client, analyst)

    assert client.get(f"/alerts/{alert.pk}/acknowledge/").status_code == 405
    assert Alert.objects.get(pk=alert.pk).acknowledged_at is None


def test_an_analyst_acknowledges_several_alerts_at_once(client, analyst, senior, acme):
    a, b, c = (score_drop(acme, key=str(i)) for i in range(3))
    Alert.objects.filter(pk=c.pk).update(acknowledged_at=timezone.now(), acknowledged_by=senior)
    login(client, analyst)

    response = client.post("/alerts/acknowledge/", {"alert": [a.pk, b.pk, c.pk, "x", "99999"]}, follow=True)

    assert "2 alerts acknowledged; the others were already acknowledged or do not exist." in response.content.decode()
    assert set(Alert.objects.filter(acknowledged_by=analyst).values_list("pk", flat=True)) == {a.pk, b.pk}
    assert AuditEvent.objects.filter(action="alert.acknowledged").count() == 2


def test_bulk_acknowledging_nothing_or_too_much_is_a_message(client, analyst, acme):
    score_drop(acme)
    login(client, analyst)

    nothing = client.post("/alerts/acknowledge/", {}, follow=True)
    too_many = client.post("/alerts/acknowledge/", {"alert": list(range(1, BULK_MAX + 2))}, follow=True)

    assert "Select the alerts to acknowledge." in nothing.content.decode()
    assert f"Acknowledge at most {BULK_MAX} alerts at once." in too_many.content.decode()
    assert not Alert.objects.filter(acknowledged_at__isnull=False).exists()


# --- who may do what -----------------------------------------------------------------------------------------------


def test_an_auditor_reads_the_inbox_but_cannot_act(client, auditor, acme):
    alert = score_drop(acme)
    login(client, auditor)

    page = client.get("/alerts/")

    assert page.status_code == 200 and rows_of(page) == [alert.pk]
    assert "Acknowledge" not in page.content.decode()
    assert client.post(f"/alerts/{alert.pk}/acknowledge/").status_code == 403
    assert client.post("/alerts/acknowledge/", {"alert": [alert.pk]}).status_code == 403
    assert client.get("/alerts/companies/552100554/limit/").status_code == 403
    assert Alert.objects.get(pk=alert.pk).acknowledged_at is None


def test_an_admin_reads_the_inbox_but_cannot_act(client, admin_user, acme):
    alert = score_drop(acme)
    login(client, admin_user)

    assert rows_of(client.get("/alerts/")) == [alert.pk]
    assert client.post(f"/alerts/{alert.pk}/acknowledge/").status_code == 403


def test_a_user_without_a_role_is_refused_and_anonymous_is_sent_to_log_in(client, outsider, acme):
    alert = score_drop(acme)

    response = client.get("/alerts/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    response = client.post(f"/alerts/{alert.pk}/acknowledge/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")

    login(client, outsider)
    assert client.get("/alerts/").status_code == 403


# --- the e-mail --------------------------------------------------------------------------------------------------


@pytest.fixture
def team(reference_data):
    """Who gets alert e-mails: analysts and senior analysts with an address, active."""
    people = {
        "ann": _user("ann.analyst", "analyst"),
        "sid": _user("sid.senior", "senior_analyst"),
        "nomail": _user("nora.nomail", "analyst"),
        "gone": _user("gus.gone", "analyst"),
        "aud": _user("audrey.auditor", "auditor"),
        "adm": _user("adam.admin", "admin"),
    }
    for key, person in people.items():
        person.email = "" if key == "nomail" else f"{key}@example.test"
        person.is_active = key != "gone"
        person.save()
    return people


def test_a_new_alert_is_emailed_once_to_active_analysts_with_an_address(team, acme, settings):
    settings.BACKOFFICE_URL = "https://riskoffice.example.test"
    alert = insolvency(acme)

    assert notify.email_alerts([alert.pk]) is None  # the task, run as a worker runs it

    assert sorted(m.to[0] for m in mail.outbox) == ["ann@example.test", "sid@example.test"]
    message = mail.outbox[0]
    assert "ACME SA (SIREN 552100554)" in message.subject
    assert "Insolvency proceeding on 2026-11-02, reported by BODACC" in message.body
    assert "https://riskoffice.example.test/dossiers/companies/552100554/" in message.body
    assert "https://riskoffice.example.test/alerts/" in message.body
    alert.refresh_from_db()
    assert alert.emailed_at is not None

    mail.outbox.clear()
    notify.email_alerts([alert.pk])
    assert mail.outbox == []


def test_several_alerts_go_in_one_email_per_person(team, acme, globex):
    ids = [score_drop(acme).pk, band_change(globex).pk]

    notify.email_alerts(ids)

    assert len(mail.outbox) == 2
    assert mail.outbox[0].subject == "[riskoffice] 2 new alerts"
    assert "score 712 → 640" in mail.outbox[0].body and "Globex SARL (SIREN 732829320)" in mail.outbox[0].body


def test_an_alert_acknowledged_before_its_email_left_is_not_emailed(team, acme):
    alert = score_drop(acme)
    Alert.objects.filter(pk=alert.pk).update(acknowledged_at=timezone.now(), acknowledged_by=team["ann"])

    notify.email_alerts([alert.pk])

    assert mail.outbox == []


def test_the_email_is_enqueued_only_when_the_transaction_commits(acme, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        with transaction.atomic():
            notify.alerts_email_on_commit([score_drop(acme).pk])
    assert len(callbacks) == 1

    with django_capture_on_commit_callbacks() as callbacks:
        try:
            with transaction.atomic():
                notify.alerts_email_on_commit([score_drop(acme, key="rolled-back").pk])
                raise RuntimeError("the change fails")
        except RuntimeError:
            pass
    assert callbacks == []


def test_the_sweep_emails_alerts_whose_task_was_lost(team, acme):
    lost = score_drop(acme, key="1", ago=10)
    fresh = score_drop(acme, key="2")

    notify.email_unsent_alerts()

    assert len(mail.outbox) == 2
    lost.refresh_from_db()
    fresh.refresh_from_db()
    assert lost.emailed_at is not None and fresh.emailed_at is None


def test_a_mail_server_failure_leaves_the_alert_for_the_sweep(team, acme, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 1
    alert = score_drop(acme)

    with pytest.raises(OSError):
        notify.email_alerts([alert.pk])

    alert.refresh_from_db()
    assert alert.emailed_at is None


# --- two at once -------------------------------------------------------------------------------------------------


def _at_once(*calls) -> list[object]:
    """Run the calls in threads started together; each result, or the exception it raised."""
    import threading

    from django.db import connections

    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as error:  # noqa: BLE001 (the test looks at what each one got)
            results[i] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


@pytest.mark.django_db(transaction=True)
def test_two_workers_given_the_same_alert_email_it_once(team, acme):
    alert = score_drop(acme)

    sent = _at_once(*(lambda: notify.alerts_email(alert_ids=[alert.pk]) for _ in range(3)))

    assert sorted(sent) == [0, 0, 1]
    assert len(mail.outbox) == 2  # ann and sid, once each


@pytest.mark.django_db(transaction=True)
def test_two_analysts_acknowledging_at_once_one_wins_the_other_is_told(analyst, senior, acme):
    from django.core.exceptions import ValidationError

    from alerts.inbox import alert_acknowledge

    alert = score_drop(acme)

    results = _at_once(
        lambda: alert_acknowledge(alert=Alert.objects.get(pk=alert.pk), user=analyst),
        lambda: alert_acknowledge(alert=Alert.objects.get(pk=alert.pk), user=senior),
    )

    assert sorted(type(r).__name__ for r in results) == ["ValidationError", "bool"]
    assert any(isinstance(r, ValidationError) and "already acknowledged" in r.messages[0] for r in results)
    assert AuditEvent.objects.filter(action="alert.acknowledged").count() == 1
