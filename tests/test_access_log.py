"""The access log: every read and change, by whom and through which door, append-only and hash-chained.

Specification (issue 10): partners' API reads are logged with their client, back-office reads and CSV exports
with the user, admin changes, sign-ins and failed sign-ins (never a password, a token or a secret); the chain
verifies, and `manage.py verify_access_log` names the first entry that was modified, deleted or inserted; on
PostgreSQL the access log and the audit trail refuse UPDATE and DELETE; a retention purge keeps the chain
verifiable; auditors (and admins) search and export the logs, analysts cannot.
"""

from __future__ import annotations

import itertools
import json
import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from riskoffice.accesslog.models import AccessLogCheckpoint, AccessLogEntry
from riskoffice.accesslog.services import access_log_record, accesslog_purge_before, accesslog_verify
from riskoffice.audit import Actor, audit_record, audit_redaction_allow
from riskoffice.models import AuditEvent
from tests.conftest import PASSWORD, login, obtain_token
from tests.test_backoffice import scored_dossier

pytestmark = pytest.mark.django_db

LOG_PAGES = ["/access-log/", "/access-log/export.csv", "/access-log/audit/", "/access-log/audit/export.csv"]


def entries(**filters) -> list[AccessLogEntry]:
    return list(AccessLogEntry.objects.filter(**filters).order_by("id"))


def verify() -> tuple[int, str]:
    """manage.py verify_access_log: (exit code, what it printed or the error it raised)."""
    out = StringIO()
    try:
        call_command("verify_access_log", stdout=out)
    except CommandError as error:
        return 1, str(error)
    return 0, out.getvalue()


def raw(sql: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


TABLE = AccessLogEntry._meta.db_table


@pytest.fixture
def dossier(champion, marketplace):
    return scored_dossier(marketplace)


# --- what is logged ----------------------------------------------------------------------------------------


def test_an_api_read_and_list_are_logged_with_the_client(client, marketplace, dossier):
    token = obtain_token(client, marketplace)
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_USER_AGENT": "partner-sdk/1.0"}

    assert client.get(f"/api/v1/scores/{dossier.pk}", **bearer).status_code == 200
    assert client.get("/api/v1/scores?status=scored&siren=552100554", **bearer).status_code == 200

    detail, listing = entries(channel="api")
    assert detail.actor_client == marketplace.api_client and detail.actor_user is None
    assert marketplace.client_id in detail.actor_label
    assert (detail.action, detail.method, detail.route, detail.outcome) == ("read", "GET", "api:score-detail", 200)
    assert (detail.object_type, detail.object_id) == ("dossiers.dossier", str(dossier.pk))
    assert detail.user_agent == "partner-sdk/1.0" and detail.ip == "127.0.0.1"
    assert listing.actor_client == marketplace.api_client
    assert listing.object_ids == [str(dossier.pk)]
    # Kept: how the list was asked for; not kept: whom it was about (the SIREN searched for).
    assert listing.path == "/api/v1/scores?status=scored"


def test_an_api_request_without_a_valid_token_is_logged_without_a_client(client, db):
    assert client.get("/api/v1/scores", HTTP_AUTHORIZATION="Bearer not-a-token").status_code == 401

    (entry,) = entries(channel="api")
    assert entry.actor_client is None and entry.outcome == 401
    assert "not-a-token" not in json.dumps(list(AccessLogEntry.objects.values()), default=str)


def test_a_token_request_is_logged_with_the_client_id_only(client, marketplace):
    obtain_token(client, marketplace)
    bad = marketplace.basic_auth.replace("Basic ", "Basic x")
    client.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=bad)

    issued = entries(channel="token", action="login")
    assert [e.actor_label for e in issued] == [marketplace.client_id]
    assert issued[0].outcome == 200
    assert entries(channel="token", action="login_failed")[0].outcome in (400, 401)


def test_a_back_office_dossier_page_is_logged_with_the_user(client, analyst, dossier):
    login(client, analyst)
    assert client.get(f"/dossiers/{dossier.pk}/").status_code == 200

    (entry,) = entries(channel="back_office", action="read")
    assert entry.actor_user == analyst and entry.actor_label == "alice.analyst"
    assert (entry.route, entry.object_type, entry.object_id) == ("dossiers:detail", "dossiers.dossier", str(dossier.pk))


def test_nothing_is_logged_for_health_checks_static_files_the_schema_or_an_anonymous_visitor(client, db):
    for path in ("/healthz", "/static/css/app.css", "/api/v1/schema/", "/dossiers/", "/login/"):
        client.get(path)
    assert AccessLogEntry.objects.count() == 0


def test_a_csv_export_is_logged_as_an_export(client, auditor):
    login(client, auditor)
    response = client.get("/access-log/export.csv", {"channel": "back_office"})

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    b"".join(response.streaming_content)
    (export,) = entries(action="export")
    assert export.actor_user == auditor and export.path == "/access-log/export.csv?channel=back_office"


def test_an_admin_change_is_logged(client, admin_user, marketplace):
    login(client, admin_user)
    url = f"/admin/riskoffice/partner/{marketplace.partner.pk}/change/"

    response = client.post(url, {"name": "Pay Later Marketplace SA", "is_sandbox": "on"})

    assert response.status_code == 302
    (change,) = entries(channel="admin", action="change")
    assert change.actor_user == admin_user and change.method == "POST"
    assert (change.object_type, change.object_id) == ("riskoffice.partner", str(marketplace.partner.pk))


def test_sign_ins_and_failed_sign_ins_are_logged_without_the_password(client, analyst):
    wrong = "not the password at all"
    client.post("/login/", {"username": "alice.analyst", "password": wrong})
    login(client, analyst)

    (failed,) = entries(action="login_failed")
    assert failed.actor_label == "alice.analyst" and failed.actor_user is None
    assert entries(action="login")[0].actor_user == analyst
    stored = json.dumps(list(AccessLogEntry.objects.values()), default=str)
    assert wrong not in stored and PASSWORD not in stored


def test_no_token_or_secret_reaches_the_access_log_or_the_python_logs(client, marketplace, dossier, caplog):
    caplog.set_level(logging.DEBUG)
    token = obtain_token(client, marketplace)
    client.get(f"/api/v1/scores/{dossier.pk}", HTTP_AUTHORIZATION=f"Bearer {token}")
    client.get("/api/v1/scores", HTTP_AUTHORIZATION=f"Bearer {token}")

    stored = json.dumps(list(AccessLogEntry.objects.values()), default=str)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (token, marketplace.client_secret, marketplace.basic_auth.split()[1]):
        assert secret not in stored
        assert secret not in logged
    assert AccessLogEntry.objects.filter(channel="api").count() == 2


def test_a_command_records_its_export_through_the_service(db):
    access_log_record(channel="command", action="export", label="export_subject_data", object_type="x", object_id="7")

    (entry,) = entries(channel="command")
    assert (entry.actor_label, entry.action, entry.object_id) == ("export_subject_data", "export", "7")
    with pytest.raises(ValueError):
        access_log_record(channel="somewhere", action="read")


# --- the chain ---------------------------------------------------------------------------------------------


def _some_entries(count: int = 5) -> list[int]:
    return [
        access_log_record(channel="command", action="read", label=f"task-{n}", object_ids=[n]) for n in range(count)
    ]


def test_the_chain_verifies_and_the_command_prints_its_head(db):
    ids = _some_entries()

    code, output = verify()

    head = AccessLogEntry.objects.get(pk=ids[-1]).hash
    assert code == 0 and "5 entries verified" in output and head in output
    chain = entries()
    assert chain[0].prev_hash == "" and all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))


def _without_trigger(sql: str, params: list) -> None:
    """A raw write as someone with the database's owner rights would do it (on PostgreSQL, trigger disabled)."""
    if connection.vendor == "postgresql":
        raw("SET CONSTRAINTS ALL IMMEDIATE")  # no foreign-key check left pending: ALTER TABLE would refuse
        raw(f"ALTER TABLE {TABLE} DISABLE TRIGGER accesslog_entry_append_only")
    raw(sql, params)
    if connection.vendor == "postgresql":
        raw(f"ALTER TABLE {TABLE} ENABLE TRIGGER accesslog_entry_append_only")


def test_a_modified_entry_is_named_by_the_command(db):
    ids = _some_entries()

    _without_trigger(f"UPDATE {TABLE} SET actor_label = %s WHERE id = %s", ["someone-else", ids[2]])  # noqa: S608

    code, output = verify()
    assert code == 1 and f"entry #{ids[2]}" in output and "modified" in output


def test_a_modified_entry_with_its_hash_recomputed_breaks_the_next_link(db):
    ids = _some_entries()

    _without_trigger(f"UPDATE {TABLE} SET hash = %s WHERE id = %s", ["0" * 64, ids[1]])  # noqa: S608

    code, output = verify()
    assert code == 1 and f"entry #{ids[1]}" in output


def test_a_deleted_entry_is_detected(db):
    ids = _some_entries()

    _without_trigger(f"DELETE FROM {TABLE} WHERE id = %s", [ids[2]])  # noqa: S608

    code, output = verify()
    assert code == 1 and f"entry #{ids[3]}" in output and "deleted" in output


def test_an_inserted_entry_is_detected(db):
    ids = _some_entries(3)
    forged = AccessLogEntry.objects.get(pk=ids[1])
    forged.pk, forged.hash, forged.actor_label = ids[1] * 1000, "f" * 64, "forger"

    forged.save(force_insert=True)

    code, output = verify()
    assert code == 1 and f"entry #{forged.pk}" in output


def test_an_anchored_head_that_left_the_chain_is_detected(db):
    _some_entries(2)
    anchor = AccessLogEntry.objects.order_by("-id").first().hash
    _some_entries(1)

    call_command("verify_access_log", anchor=[anchor], stdout=StringIO())
    with pytest.raises(CommandError, match="rewritten"):
        call_command("verify_access_log", anchor=["a" * 64], stdout=StringIO())


def test_the_access_log_refuses_update_and_delete_on_postgresql_and_verify_catches_them_on_sqlite(db):
    ids = _some_entries(3)
    update = f"UPDATE {TABLE} SET actor_label = 'x' WHERE id = %s"  # noqa: S608
    delete = f"DELETE FROM {TABLE} WHERE id = %s"  # noqa: S608
    if connection.vendor == "postgresql":
        for sql in (update, delete):
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
                raw(sql, [ids[1]])
        assert verify()[0] == 0
    else:  # no trigger on SQLite (its flush deletes rows): the chain is the protection
        raw(update, [ids[1]])
        assert verify()[0] == 1


def test_the_audit_trail_refuses_update_and_delete_on_postgresql(db, marketplace):
    event = audit_record(actor=Actor.of_system("test"), action="partner.checked", obj=marketplace.partner)
    table = AuditEvent._meta.db_table
    if connection.vendor != "postgresql":
        assert not AuditEvent.objects.filter(pk=event.pk, action="x").exists()
        return  # SQLite has no trigger (docs/security.md)
    for sql in (f"UPDATE {table} SET action = 'x' WHERE id = %s", f"DELETE FROM {table} WHERE id = %s"):  # noqa: S608
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            raw(sql, [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk, action="partner.checked").exists()


def test_an_erasure_may_redact_an_audit_rows_before_and_after_and_nothing_more(db, marketplace):
    event = audit_record(actor=Actor.of_system("test"), action="p", obj=marketplace.partner, after={"name": "X"})
    with transaction.atomic():
        audit_redaction_allow()
        AuditEvent.objects.filter(pk=event.pk).update(after={"name": "[anonymised]"})
    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            audit_redaction_allow()
            AuditEvent.objects.filter(pk=event.pk).update(action="other")
    event.refresh_from_db()
    assert (event.action, event.after) == ("p", {"name": "[anonymised]"})


def test_the_retention_purge_keeps_the_chain_verifiable(db):
    old = _some_entries(4)
    cutoff = timezone.now()
    kept = _some_entries(2)

    assert accesslog_purge_before(cutoff, dry_run=True) == 4
    assert AccessLogEntry.objects.count() == 6
    assert accesslog_purge_before(cutoff, dry_run=False) == 4

    remaining = [e.pk for e in entries()]
    assert remaining[:2] == kept and len(remaining) == 3  # the purge logged itself
    checkpoint = AccessLogCheckpoint.objects.get()
    assert (checkpoint.purged_through_id, checkpoint.purged_count) == (old[-1], 4)
    assert accesslog_verify().ok and verify()[0] == 0
    assert accesslog_purge_before(cutoff, dry_run=False) == 0


def test_a_purge_of_everything_still_chains_the_next_entry(db):
    _some_entries(3)
    accesslog_purge_before(timezone.now() + timedelta(days=1), dry_run=False)  # takes its own entry along next time

    _some_entries(1)

    assert accesslog_verify().ok


# --- the auditor's pages -----------------------------------------------------------------------------------


def test_an_auditor_searches_the_access_log(client, auditor, analyst, dossier):
    login(client, analyst)
    client.get(f"/dossiers/{dossier.pk}/")
    client.logout()
    login(client, auditor)

    found = client.get("/access-log/", {"actor": "alice.analyst", "object_id": str(dossier.pk)})
    nothing = client.get("/access-log/", {"actor": "nobody", "date_from": "2001-01-01", "date_to": "2001-01-02"})
    wrong = client.get("/access-log/", {"date_from": "yesterday", "outcome": "42"})

    assert found.status_code == 200
    assert found.content.decode().count("<tr data-entry=") == 1 and f"/dossiers/{dossier.pk}/" in found.content.decode()
    assert "No entries match these filters." in nothing.content.decode()
    assert wrong.status_code == 200 and "Enter a valid date." in wrong.content.decode()


def test_the_access_log_pages_without_counting(client, auditor, monkeypatch):
    from riskoffice.accesslog import views

    monkeypatch.setattr(views, "PAGE_SIZE", 3)
    _some_entries(4)
    login(client, auditor)

    first = client.get("/access-log/", {"channel": "command"}).content.decode()
    second = client.get("/access-log/", {"channel": "command", "page": "2"}).content.decode()

    assert first.count("<tr data-entry=") == 3 and "Older →" in first
    assert second.count("<tr data-entry=") == 1 and "← Newer" in second


def test_an_auditor_searches_and_exports_the_audit_trail(client, auditor, dossier):
    login(client, auditor)

    page = client.get("/access-log/audit/", {"object_id": str(dossier.pk)}).content.decode()
    export = client.get("/access-log/audit/export.csv", {"action": "dossier.created"})
    lines = b"".join(export.streaming_content).decode("utf-8-sig").splitlines()

    assert "dossier.created" in page and f"{dossier.pk}" in page
    assert lines[0].startswith("id,at_utc,actor,action") and len(lines) == 2 and str(dossier.pk) in lines[1]
    assert entries(action="export", route="accesslog:audit-export")[0].actor_user == auditor


@pytest.mark.parametrize("path", LOG_PAGES)
def test_an_analyst_cannot_open_the_logs(client, analyst, path):
    login(client, analyst)
    assert client.get(path).status_code == 403


def test_an_admin_can_open_the_logs(client, admin_user):
    login(client, admin_user)
    assert client.get("/access-log/").status_code == 200
    assert client.get("/access-log/audit/").status_code == 200
