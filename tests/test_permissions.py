"""The permission matrix: every back-office view and every API endpoint, with each role and client kind.

Each table below is the specification. A row of the back-office table is one URL and method; its columns
are what each actor must get. A row of the API table is one endpoint and method; its columns are what
each kind of client must get. The tests only walk the tables; the last test fails when a URL pattern
appears in the dossiers, scoring or api namespace that no table covers.

The rules the tables encode (riskoffice/roles.py, the views and the selectors):

- no session: a redirect to the login page, and nothing shown or written;
- a logged-in user without a role: 403 everywhere (the admin site sends them to its own login);
- reading dossiers and the policy: any role (CAN_READ_DOSSIERS); deciding (override, outcome, statement,
  uploading a file to score): analysts and senior analysts (CAN_DECIDE);
- bulk jobs (CAN_VIEW): an analyst sees only their own (another analyst's is a 404), senior analysts and
  auditors see every job, admins none; editing the policy (CAN_EDIT): senior analysts only;
- a refused POST is a 403 and changes nothing; an accepted one, sent empty, is a 400 with the form;
- the role check comes before the lookup, so a 403 never tells whether an id exists;
- the API: no usable bearer token is a 401, a client without the endpoint's scope a 403, another partner's
  object a 404 that shows none of its data; a back-office session is no API credential.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from oauth2_provider.models import AccessToken

from alerts.models import Alert, WatchedCompany, WebhookDelivery, WebhookEndpoint
from alerts.services import event_publish, webhook_endpoint_create
from dossiers.models import Dossier, Outcome, Override
from riskoffice.audit import Actor
from riskoffice.models import AuditEvent
from riskoffice.roles import ANALYST
from riskoffice.subjects.models import SubjectRequest
from scoring.bulk.jobs import bulk_job_create, bulk_job_run
from scoring.model.registry import model_register
from scoring.models import BulkScoringJob, FinancialStatement, ModelVersion, PolicyVersion, RetrainingRun
from tests.conftest import ALL_SCOPES, PartnerClient, _user, login, make_partner_client, obtain_token, trained_once
from tests.test_backoffice import scored_dossier
from tests.test_bulk_scoring import csv_bytes, portfolio_rows

pytestmark = pytest.mark.django_db

SIREN = "552100554"
JOB_FILENAME = "alice-portfolio-q3.csv"
WEBHOOK_URL = "https://hooks.pay-later.example/riskoffice"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
API_ERROR = "application/problem+json"


# --- the objects the URLs point at -------------------------------------------------------------------


@dataclass
class Objects:
    """What the URLs point at, each made on first use so that a row builds only what it needs."""

    request: pytest.FixtureRequest

    def fixture(self, name: str) -> Any:
        return self.request.getfixturevalue(name)

    @cached_property
    def dossier(self) -> Dossier:
        """The marketplace's B2B dossier, created as the API would and scored by the real service."""
        self.fixture("champion")
        return scored_dossier(self.fixture("marketplace"))

    @cached_property
    def pending_override(self) -> Override:
        """The analyst (alice) asked to accept the dossier the policy refused: it awaits a senior analyst."""
        from dossiers.services import dossier_override
        from tests.test_four_eyes import reason_code

        Dossier.objects.filter(pk=self.dossier.pk).update(decision="refuse")
        self.dossier.refresh_from_db()
        return dossier_override(
            dossier=self.dossier,
            decision="accept",
            reason_code=reason_code(),
            reason="Guarantee obtained.",
            user=self.fixture("analyst"),
        )

    @cached_property
    def outcome_import(self):
        """An outcome file the analyst (alice) imported: one row, rejected (an unknown dossier)."""
        from dossiers.outcome_import import outcome_import_run

        return outcome_import_run(
            user=self.fixture("analyst"),
            filename="outcomes.csv",
            data=f"dossier;status;date\n{UNKNOWN_ID};repaid;2025-01-31\n".encode(),
        )

    @cached_property
    def job(self) -> BulkScoringJob:
        """A bulk job the analyst (alice) uploaded, scored to the end so that its file can be downloaded."""
        self.fixture("champion")
        job = bulk_job_create(
            user=self.fixture("analyst"),
            segment="b2b",
            filename=JOB_FILENAME,
            data=csv_bytes(portfolio_rows(12, seed=5)),
        )
        bulk_job_run(job_id=job.pk)
        job.refresh_from_db()
        assert job.status == BulkScoringJob.Status.DONE, job.error
        return job

    @cached_property
    def review(self):
        """A human review of the dossier's decision the marketplace asked for (GDPR Art. 22), still open."""
        from riskoffice.subjects.review import review_request

        request, _ = review_request(self.dossier, client=self.fixture("marketplace").api_client)
        return request

    @cached_property
    def erasure_request(self):
        """An erasure request an admin recorded for the dossier's company, awaiting the preview's confirmation."""
        from riskoffice.subjects.erasure import erasure_request_record

        return erasure_request_record(
            user=self.fixture("admin_user"), received_at=timezone.now(), company=self.dossier.company
        )

    @cached_property
    def webhook(self) -> WebhookEndpoint:
        """The marketplace's webhook endpoint."""
        owner: PartnerClient = self.fixture("marketplace")
        endpoint, _ = webhook_endpoint_create(
            partner=owner.partner,
            url=WEBHOOK_URL,
            event_types=["score.completed"],
            actor=Actor(client=owner.api_client),
        )
        return endpoint

    @cached_property
    def delivery(self) -> WebhookDelivery:
        """A score.completed delivered to the marketplace's endpoint: its log, and a redelivery to ask for."""
        owner: PartnerClient = self.fixture("marketplace")
        self.webhook  # noqa: B018 - the endpoint exists before the event
        (delivery,) = event_publish(partner=owner.partner, event_type="score.completed", payload={"dossier_id": "d"})
        assert delivery.endpoint_id == self.webhook.pk
        WebhookDelivery.objects.filter(pk=delivery.pk).update(status=WebhookDelivery.Status.DELIVERED)
        return delivery

    @cached_property
    def alert(self) -> Alert:
        """An unacknowledged alert on the dossier's company: an insolvency proceeding BODACC published."""
        return Alert.objects.create(
            kind=Alert.Kind.NEGATIVE_EVENT,
            severity=Alert.Severity.CRITICAL,
            dedup_key="event:permissions",
            company=self.dossier.company,
            dossier=self.dossier,
            event_kind="insolvency_proceeding",
        )

    @cached_property
    def watch(self) -> WatchedCompany:
        """The marketplace watches the company of its dossier."""
        owner: PartnerClient = self.fixture("marketplace")
        return WatchedCompany.objects.create(partner=owner.partner, company=self.dossier.company)

    @cached_property
    def challenger(self) -> ModelVersion:
        """A challenger of the B2B champion, awaiting a senior analyst's decision."""
        self.fixture("champion")
        return model_register(
            segment="b2b",
            trained=trained_once(),
            trained_by="tests",
            promote=False,
            status=ModelVersion.Status.CHALLENGER,
        )

    @cached_property
    def retraining_run(self) -> RetrainingRun:
        """The scheduled retraining that made the challenger."""
        return RetrainingRun.objects.create(
            segment="b2b",
            trigger=RetrainingRun.Trigger.SCHEDULE,
            status=RetrainingRun.Status.SUCCEEDED,
            stage="Challenger registered",
            progress=100,
            challenger=self.challenger,
        )


@pytest.fixture
def objects(request, settings) -> Objects:
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # no DNS lookup of the example host
    return Objects(request)


def world_state() -> tuple:
    """Everything a refused or invalid request must leave as it was."""
    counts = tuple(
        model.objects.count()
        for model in (
            Dossier,
            Override,
            Outcome,
            FinancialStatement,
            BulkScoringJob,
            PolicyVersion,
            WebhookEndpoint,
            AuditEvent,
            SubjectRequest,
            Alert,
            WatchedCompany,
            RetrainingRun,
        )
    )
    dossiers = Dossier.objects.order_by("pk").values_list(
        "pk", "status", "decision", "decision_overridden", "updated_at"
    )
    alerts = Alert.objects.order_by("pk").values_list("pk", "acknowledged_at")
    endpoints = WebhookEndpoint.objects.order_by("pk").values_list("pk", "is_active", "paused_at", "mode")
    deliveries = WebhookDelivery.objects.order_by("pk").values_list("pk", "status", "attempts")
    models = ModelVersion.objects.order_by("pk").values_list("pk", "status", "decided_at")
    return (*counts, list(dossiers), list(alerts), list(endpoints), list(deliveries), list(models))


# --- the back-office -------------------------------------------------------------------------------

ACTORS = ("anonymous", "outsider", "analyst", "other_analyst", "senior", "auditor", "admin")


def _review_kwargs(o: Objects) -> dict[str, Any]:
    """The override awaiting approval: a senior analyst other than its author (alice) approves or rejects it."""
    return {"pk": o.pending_override.dossier_id, "override_pk": o.pending_override.pk}


# Buttons with no field to fill: an empty POST by someone let in does it (and redirects to the dossier).
ACTIONS_WITHOUT_FORM = {
    "take",
    "release",
    "human review",
    "erasure",
    "acknowledge",
    "acknowledge bulk",
    "webhook pause",
    "webhook resume",
    "webhook redeliver",
    "model retrain",
}

# url kind -> (URL name, its kwargs, the text that only someone allowed in may see)
BACKOFFICE_URLS: dict[str, tuple[str, Any, Any]] = {
    "queue": ("dossiers:queue", lambda o: {}, lambda o: o.dossier.company.siren),
    "dossier": ("dossiers:detail", lambda o: {"pk": o.dossier.pk}, lambda o: o.dossier.company.siren),
    "unknown dossier": ("dossiers:detail", lambda o: {"pk": UNKNOWN_ID}, None),
    "malformed dossier id": ("dossiers:detail", lambda o: {"pk": "not-a-uuid"}, None),
    "override": ("dossiers:override", lambda o: {"pk": o.dossier.pk}, lambda o: o.dossier.company.siren),
    "override unknown dossier": ("dossiers:override", lambda o: {"pk": UNKNOWN_ID}, None),
    "override approve": ("dossiers:override-approve", _review_kwargs, lambda o: o.dossier.company.siren),
    "override reject": ("dossiers:override-reject", _review_kwargs, lambda o: o.dossier.company.siren),
    "override approve unknown": ("dossiers:override-approve", lambda o: {"pk": UNKNOWN_ID, "override_pk": 987}, None),
    "outcome": ("dossiers:outcome", lambda o: {"pk": o.dossier.pk}, lambda o: o.dossier.company.siren),
    "statement": ("dossiers:statement", lambda o: {"pk": o.dossier.pk}, lambda o: o.dossier.company.siren),
    "challenge": ("dossiers:challenge", lambda o: {"pk": o.dossier.pk}, lambda o: o.dossier.company.siren),
    "retry": ("dossiers:retry", lambda o: {"pk": o.dossier.pk}, lambda o: o.dossier.company.siren),
    "take": ("dossiers:take", lambda o: {"pk": o.dossier.pk}, None),
    "release": ("dossiers:release", lambda o: {"pk": o.dossier.pk}, None),
    "company": ("dossiers:company", lambda o: {"siren": o.dossier.company.siren}, lambda o: str(o.dossier.pk)),
    "unknown company": ("dossiers:company", lambda o: {"siren": "732829320"}, None),
    "portfolio": ("dossiers:portfolio", lambda o: {}, None),
    "outcome correct": ("dossiers:outcome-correct", lambda o: {"pk": o.dossier.pk}, lambda o: o.dossier.company.siren),
    "outcome imports": ("dossiers:outcome-imports", lambda o: {}, None),
    "outcome import": ("dossiers:outcome-import", lambda o: {"pk": o.outcome_import.pk}, lambda o: "outcomes.csv"),
    "outcome import download": ("dossiers:outcome-import-download", lambda o: {"pk": o.outcome_import.pk}, None),
    "bulk": ("scoring:bulk", lambda o: {}, None),
    "bulk job": ("scoring:bulk-job", lambda o: {"pk": o.job.pk}, lambda o: JOB_FILENAME),
    "bulk download": ("scoring:bulk-download", lambda o: {"pk": o.job.pk}, lambda o: bytes(o.job.output_csv)),
    "policy": ("scoring:policy", lambda o: {}, None),
    "policy new": ("scoring:policy-new", lambda o: {"segment": "b2b"}, None),
    "policy new unknown segment": ("scoring:policy-new", lambda o: {"segment": "b2z"}, None),
    "human review": ("dossiers:human-review", lambda o: {"pk": o.dossier.pk}, None),
    "human review complete": (
        "dossiers:human-review-complete",
        lambda o: {"pk": o.review.dossier_id, "review_pk": o.review.pk},
        lambda o: o.dossier.company.siren,
    ),
    "subject requests": ("subjects:requests", lambda o: {}, None),
    "access request": ("subjects:access-new", lambda o: {}, None),
    "erasure request": ("subjects:erasure-new", lambda o: {}, None),
    "erasure": ("subjects:erasure", lambda o: {"pk": o.erasure_request.pk}, lambda o: o.dossier.company.siren),
    "register csv": ("register:export-csv", lambda o: {}, None),
    "register print": ("register:print", lambda o: {}, None),
    "access log": ("accesslog:entries", lambda o: {}, None),
    "access log csv": ("accesslog:entries-export", lambda o: {}, None),
    "audit trail": ("accesslog:audit", lambda o: {}, None),
    "audit trail csv": ("accesslog:audit-export", lambda o: {}, None),
    "alerts": ("alerts:inbox", lambda o: {}, lambda o: o.alert.company.siren),
    "acknowledge": ("alerts:acknowledge", lambda o: {"pk": o.alert.pk}, None),
    "acknowledge unknown": ("alerts:acknowledge", lambda o: {"pk": 987654}, None),
    "acknowledge bulk": ("alerts:acknowledge-bulk", lambda o: {}, None),
    "company limit": ("alerts:company-limit", lambda o: {"siren": o.dossier.company.siren}, None),
    "company limit unknown": ("alerts:company-limit", lambda o: {"siren": "732829320"}, None),
    "company event": ("alerts:company-event", lambda o: {"siren": o.dossier.company.siren}, None),
    "webhook list": ("alerts:webhooks", lambda o: {}, lambda o: o.webhook.url),
    "webhook page": ("alerts:webhook", lambda o: {"pk": o.webhook.pk}, lambda o: o.delivery.message_id),
    "webhook page unknown": ("alerts:webhook", lambda o: {"pk": 987654}, None),
    "webhook pause": ("alerts:webhook-pause", lambda o: {"pk": o.webhook.pk}, None),
    "webhook resume": ("alerts:webhook-resume", lambda o: {"pk": o.webhook.pk}, None),
    "webhook redeliver": (
        "alerts:webhook-redeliver",
        lambda o: {"pk": o.delivery.endpoint_id, "delivery_pk": o.delivery.pk},
        None,
    ),
    "models": ("scoring:models", lambda o: {}, lambda o: o.challenger.label),
    "model": ("scoring:model-detail", lambda o: {"pk": o.challenger.pk}, lambda o: o.challenger.label),
    "unknown model": ("scoring:model-detail", lambda o: {"pk": 987654}, None),
    "model card md": ("scoring:model-card-md", lambda o: {"pk": o.challenger.pk}, lambda o: o.challenger.label),
    "model card json": ("scoring:model-card-json", lambda o: {"pk": o.challenger.pk}, lambda o: o.challenger.label),
    "model approve": ("scoring:model-approve", lambda o: {"pk": o.challenger.pk}, None),
    "model approve unknown": ("scoring:model-approve", lambda o: {"pk": 987654}, None),
    "model reject": ("scoring:model-reject", lambda o: {"pk": o.challenger.pk}, None),
    "model rollback": ("scoring:model-rollback", lambda o: {"segment": "b2b"}, None),
    "model rollback unknown segment": ("scoring:model-rollback", lambda o: {"segment": "b2z"}, None),
    "model retrain": ("scoring:model-retrain", lambda o: {"segment": "b2b"}, None),
    "model retrain unknown segment": ("scoring:model-retrain", lambda o: {"segment": "b2z"}, None),
    "retraining progress": (
        "scoring:retraining-progress",
        lambda o: {"pk": o.retraining_run.pk},
        lambda o: "Challenger registered",
    ),
    "admin": ("admin:index", lambda o: {}, None),
}

# fmt: off
BACKOFFICE_MATRIX: dict[tuple[str, str], tuple[int, ...]] = {
    #                                        anonymous outsider analyst other_analyst senior auditor admin
    ("queue", "GET"):                           (302,    403,     200,    200,         200,   200,    200),
    ("dossier", "GET"):                         (302,    403,     200,    200,         200,   200,    200),
    ("unknown dossier", "GET"):                 (302,    403,     404,    404,         404,   404,    404),
    ("malformed dossier id", "GET"):            (302,    403,     404,    404,         404,   404,    404),
    ("override", "POST"):                       (302,    403,     400,    400,         400,   403,    403),
    ("override unknown dossier", "POST"):       (302,    403,     404,    404,         404,   403,    403),
    ("override approve", "POST"):               (302,    403,     403,    403,         400,   403,    403),
    ("override reject", "POST"):                (302,    403,     403,    403,         400,   403,    403),
    ("override approve unknown", "POST"):       (302,    403,     403,    403,         404,   403,    403),
    ("outcome", "POST"):                        (302,    403,     400,    400,         400,   403,    403),
    ("statement", "POST"):                      (302,    403,     400,    400,         400,   403,    403),
    ("challenge", "POST"):                      (302,    403,     400,    400,         400,   403,    403),
    ("retry", "POST"):                          (302,    403,     400,    400,         400,   403,    403),
    ("take", "POST"):                           (302,    403,     302,    302,         302,   403,    403),
    ("release", "POST"):                        (302,    403,     302,    302,         302,   403,    403),
    ("company", "GET"):                         (302,    403,     200,    200,         200,   200,    200),
    ("unknown company", "GET"):                 (302,    403,     404,    404,         404,   404,    404),
    ("portfolio", "GET"):                       (302,    403,     200,    200,         200,   200,    200),
    ("outcome correct", "POST"):                (302,    403,     400,    400,         400,   403,    403),
    ("outcome imports", "GET"):                 (302,    403,     200,    200,         200,   200,    403),
    ("outcome imports", "POST"):                (302,    403,     400,    400,         400,   403,    403),
    ("outcome import", "GET"):                  (302,    403,     200,    404,         200,   200,    403),
    ("outcome import download", "GET"):         (302,    403,     200,    404,         200,   200,    403),
    ("bulk", "GET"):                            (302,    403,     200,    200,         200,   200,    403),
    ("bulk", "POST"):                           (302,    403,     400,    400,         400,   403,    403),
    ("bulk job", "GET"):                        (302,    403,     200,    404,         200,   200,    403),
    ("bulk download", "GET"):                   (302,    403,     200,    404,         200,   200,    403),
    ("policy", "GET"):                          (302,    403,     200,    200,         200,   200,    200),
    ("policy new", "GET"):                      (302,    403,     403,    403,         200,   403,    403),
    ("policy new", "POST"):                     (302,    403,     403,    403,         400,   403,    403),
    ("policy new unknown segment", "GET"):      (302,    403,     403,    403,         404,   403,    403),
    ("human review", "POST"):                   (302,    403,     302,    302,         302,   403,    403),
    ("human review complete", "POST"):          (302,    403,     400,    400,         400,   403,    403),
    ("subject requests", "GET"):                (302,    403,     403,    403,         403,   403,    200),
    ("access request", "GET"):                  (302,    403,     403,    403,         403,   403,    200),
    ("access request", "POST"):                 (302,    403,     403,    403,         403,   403,    400),
    ("erasure request", "GET"):                 (302,    403,     403,    403,         403,   403,    200),
    ("erasure request", "POST"):                (302,    403,     403,    403,         403,   403,    400),
    ("erasure", "GET"):                         (302,    403,     403,    403,         403,   403,    200),
    ("erasure", "POST"):                        (302,    403,     403,    403,         403,   403,    302),
    ("register csv", "GET"):                    (302,    403,     403,    403,         403,   200,    200),
    ("register print", "GET"):                  (302,    403,     403,    403,         403,   200,    200),
    ("access log", "GET"):                      (302,    403,     403,    403,         403,   200,    200),
    ("access log csv", "GET"):                  (302,    403,     403,    403,         403,   200,    200),
    ("audit trail", "GET"):                     (302,    403,     403,    403,         403,   200,    200),
    ("audit trail csv", "GET"):                 (302,    403,     403,    403,         403,   200,    200),
    ("alerts", "GET"):                          (302,    403,     200,    200,         200,   200,    200),
    ("acknowledge", "POST"):                    (302,    403,     302,    302,         302,   403,    403),
    ("acknowledge unknown", "POST"):            (302,    403,     404,    404,         404,   403,    403),
    ("acknowledge bulk", "POST"):               (302,    403,     302,    302,         302,   403,    403),
    ("company limit", "GET"):                   (302,    403,     200,    200,         200,   403,    403),
    ("company limit", "POST"):                  (302,    403,     400,    400,         400,   403,    403),
    ("company limit unknown", "GET"):           (302,    403,     404,    404,         404,   403,    403),
    ("company event", "GET"):                   (302,    403,     200,    200,         200,   403,    403),
    ("company event", "POST"):                  (302,    403,     400,    400,         400,   403,    403),
    ("webhook list", "GET"):                    (302,    403,     403,    403,         403,   403,    200),
    ("webhook page", "GET"):                    (302,    403,     403,    403,         403,   403,    200),
    ("webhook page unknown", "GET"):            (302,    403,     403,    403,         403,   403,    404),
    ("webhook pause", "POST"):                  (302,    403,     403,    403,         403,   403,    302),
    ("webhook resume", "POST"):                 (302,    403,     403,    403,         403,   403,    302),
    ("webhook redeliver", "POST"):              (302,    403,     403,    403,         403,   403,    302),
    ("models", "GET"):                          (302,    403,     403,    403,         200,   200,    200),
    ("model", "GET"):                           (302,    403,     403,    403,         200,   200,    200),
    ("unknown model", "GET"):                   (302,    403,     403,    403,         404,   404,    404),
    ("model card md", "GET"):                   (302,    403,     403,    403,         200,   200,    200),
    ("model card json", "GET"):                 (302,    403,     403,    403,         200,   200,    200),
    ("model approve", "POST"):                  (302,    403,     403,    403,         400,   403,    403),
    ("model approve unknown", "POST"):          (302,    403,     403,    403,         404,   403,    403),
    ("model reject", "POST"):                   (302,    403,     403,    403,         400,   403,    403),
    ("model rollback", "POST"):                 (302,    403,     403,    403,         400,   403,    403),
    ("model rollback unknown segment", "POST"): (302,    403,     403,    403,         404,   403,    403),
    ("model retrain", "POST"):                  (302,    403,     403,    403,         302,   403,    403),
    ("model retrain unknown segment", "POST"):  (302,    403,     403,    403,         404,   403,    403),
    ("retraining progress", "GET"):             (302,    403,     403,    403,         200,   200,    200),
    ("admin", "GET"):                           (302,    302,     302,    302,         302,   302,    200),
}
# fmt: on

BACKOFFICE_ROWS = [
    pytest.param(kind, method, actor, status, id=f"{method} {kind} as {actor} -> {status}")
    for (kind, method), statuses in BACKOFFICE_MATRIX.items()
    for actor, status in zip(ACTORS, statuses, strict=True)
]


@pytest.fixture
def other_analyst(reference_data) -> User:
    return _user("bob.analyst", ANALYST)


ACTOR_FIXTURES = {
    "outsider": "outsider",
    "analyst": "analyst",
    "other_analyst": "other_analyst",
    "senior": "senior",
    "auditor": "auditor",
    "admin": "admin_user",
}


@pytest.mark.parametrize(("kind", "method", "actor", "expected"), BACKOFFICE_ROWS)
def test_backoffice(client, request, objects, reference_data, kind, method, actor, expected):
    name, kwargs, secret_of = BACKOFFICE_URLS[kind]
    url = reverse(name, kwargs=kwargs(objects))
    secret = secret_of(objects) if secret_of else None
    objects.fixture("analyst")  # the owner of the bulk job exists whoever asks
    if actor != "anonymous":
        user = request.getfixturevalue(ACTOR_FIXTURES[actor])
        login(client, user)
    before = world_state()

    # An empty form: enough to tell "let in, the form said no" (400) from "kept out" (403).
    response = client.post(url, {}) if method == "POST" else client.get(url)

    assert response.status_code == expected, f"{method} {url} as {actor}"
    body = b"".join(response.streaming_content) if response.streaming else response.content
    acted = expected == 302 and actor != "anonymous" and kind in ACTIONS_WITHOUT_FORM
    if expected == 302 and not acted:
        login_url = reverse("admin:login") if name.startswith("admin:") else reverse("login")
        assert response["Location"].startswith(f"{login_url}?next=")
    if expected == 400:
        # The form, with its errors, is shown again; a button without fields says why in a flash message.
        assert b"<form" in body and (b"errorlist" in body or b"flash-error" in body)
    if secret is not None:
        shown = secret if isinstance(secret, bytes) else secret.encode()
        assert (shown in body) == (expected in {200, 400}), "shown only to those let in"
    if method == "POST" and not acted:
        assert world_state() == before, "a refused or invalid POST changes nothing"


@pytest.mark.parametrize(
    ("actor", "listed"),
    [
        ("analyst", True),
        ("other_analyst", False),
        ("senior", True),
        ("auditor", True),
    ],
)
def test_the_bulk_page_lists_a_job_only_to_those_who_may_open_it(client, request, objects, actor, listed):
    objects.job  # noqa: B018 - alice's job exists
    user = request.getfixturevalue(ACTOR_FIXTURES[actor])
    login(client, user)

    response = client.get(reverse("scoring:bulk"))

    assert response.status_code == 200
    assert (JOB_FILENAME in response.content.decode()) is listed


# --- the partner API -------------------------------------------------------------------------------

CLIENTS = (
    "no token",
    "invalid token",
    "expired token",
    "back-office session",
    "client lacking scope",
    "token lacking scope",
    "owner",
    "other partner",
)

# Buttons with no field to fill: an empty POST by someone let in does it (and redirects to the dossier).

# url kind -> (URL name, its kwargs, the scope the endpoint requires, the owner's data no one else may see)
API_URLS: dict[str, tuple[str, Any, str, Any]] = {
    "scores": ("api:scores", lambda o: {}, "scores:write", None),
    "score list": ("api:scores", lambda o: {}, "scores:read", lambda o: o.dossier.company.siren),
    "outcome": ("api:score-outcome", lambda o: {"pk": o.dossier.pk}, "outcomes:write", lambda o: SIREN),
    "unknown outcome": ("api:score-outcome", lambda o: {"pk": UNKNOWN_ID}, "outcomes:write", None),
    "events": ("api:events", lambda o: {}, "events:write", None),
    "score": ("api:score-detail", lambda o: {"pk": o.dossier.pk}, "scores:read", lambda o: SIREN),
    "unknown score": ("api:score-detail", lambda o: {"pk": UNKNOWN_ID}, "scores:read", None),
    "malformed score id": ("api:score-detail", lambda o: {"pk": "not-a-uuid"}, "scores:read", None),
    "webhooks": ("api:webhooks", lambda o: {}, "webhooks:manage", lambda o: o.webhook.url),
    "webhook": ("api:webhook-detail", lambda o: {"pk": o.webhook.pk}, "webhooks:manage", lambda o: WEBHOOK_URL),
    "unknown webhook": ("api:webhook-detail", lambda o: {"pk": 987654}, "webhooks:manage", None),
    "human review": ("api:score-human-review", lambda o: {"pk": o.dossier.pk}, "scores:write", None),
    "unknown human review": ("api:score-human-review", lambda o: {"pk": UNKNOWN_ID}, "scores:write", None),
    "webhook rotate": ("api:webhook-rotate", lambda o: {"pk": o.webhook.pk}, "webhooks:manage", None),
    "webhook pause": ("api:webhook-pause", lambda o: {"pk": o.webhook.pk}, "webhooks:manage", None),
    "webhook resume": ("api:webhook-resume", lambda o: {"pk": o.webhook.pk}, "webhooks:manage", None),
    "deliveries": (
        "api:webhook-deliveries",
        lambda o: {"pk": o.delivery.endpoint_id},
        "webhooks:manage",
        lambda o: o.delivery.message_id,
    ),
    "delivery": (
        "api:webhook-delivery",
        lambda o: {"pk": o.delivery.endpoint_id, "message_id": o.delivery.message_id},
        "webhooks:manage",
        lambda o: o.delivery.event_id,
    ),
    "unknown delivery": (
        "api:webhook-delivery",
        lambda o: {"pk": o.webhook.pk, "message_id": "msg_unknown"},
        "webhooks:manage",
        None,
    ),
    "redeliver": (
        "api:webhook-redeliver",
        lambda o: {"pk": o.delivery.endpoint_id, "message_id": o.delivery.message_id},
        "webhooks:manage",
        None,
    ),
    "monitoring": ("api:monitoring", lambda o: {}, "monitoring:manage", lambda o: o.watch.company.siren),
    "watch": ("api:monitoring-detail", lambda o: {"siren": o.watch.company.siren}, "monitoring:manage", None),
}

# Empty POSTs that act when let in (no field to fill): their effect is checked, not "nothing changed".
# (Resuming an endpoint that runs is a no-op: nothing changes, as the last branch checks.)
API_ACTIONS = {"webhook rotate", "webhook pause", "redeliver"}

# fmt: off
API_MATRIX: dict[tuple[str, str], tuple[int, ...]] = {
    #                              no token invalid expired session client-lacking token-lacking owner other partner
    ("scores", "POST"):              (401,    401,    401,    401,    403,           403,          400,  400),
    ("score list", "GET"):           (401,    401,    401,    401,    403,           403,          200,  200),
    ("outcome", "POST"):             (401,    401,    401,    401,    403,           403,          400,  404),
    ("unknown outcome", "POST"):     (401,    401,    401,    401,    403,           403,          404,  404),
    ("events", "POST"):              (401,    401,    401,    401,    403,           403,          400,  400),
    ("score", "GET"):                (401,    401,    401,    401,    403,           403,          200,  404),
    ("unknown score", "GET"):        (401,    401,    401,    401,    403,           403,          404,  404),
    ("malformed score id", "GET"):   (401,    401,    401,    401,    403,           403,          404,  404),
    ("webhooks", "GET"):             (401,    401,    401,    401,    403,           403,          200,  200),
    ("webhooks", "POST"):            (401,    401,    401,    401,    403,           403,          400,  400),
    ("webhook", "DELETE"):           (401,    401,    401,    401,    403,           403,          204,  404),
    ("unknown webhook", "DELETE"):   (401,    401,    401,    401,    403,           403,          404,  404),
    ("human review", "POST"):        (401,    401,    401,    401,    403,           403,          202,  404),
    ("unknown human review", "POST"):(401,    401,    401,    401,    403,           403,          404,  404),
    ("webhook", "GET"):              (401,    401,    401,    401,    403,           403,          200,  404),
    ("webhook rotate", "POST"):      (401,    401,    401,    401,    403,           403,          200,  404),
    ("webhook pause", "POST"):       (401,    401,    401,    401,    403,           403,          200,  404),
    ("webhook resume", "POST"):      (401,    401,    401,    401,    403,           403,          200,  404),
    ("deliveries", "GET"):           (401,    401,    401,    401,    403,           403,          200,  404),
    ("delivery", "GET"):             (401,    401,    401,    401,    403,           403,          200,  404),
    ("unknown delivery", "GET"):     (401,    401,    401,    401,    403,           403,          404,  404),
    ("redeliver", "POST"):           (401,    401,    401,    401,    403,           403,          202,  404),
    ("monitoring", "GET"):           (401,    401,    401,    401,    403,           403,          200,  200),
    ("monitoring", "POST"):          (401,    401,    401,    401,    403,           403,          400,  400),
    ("watch", "DELETE"):             (401,    401,    401,    401,    403,           403,          204,  404),
}
# fmt: on

API_ROWS = [
    pytest.param(kind, method, who, status, id=f"{method} {kind} by {who} -> {status}")
    for (kind, method), statuses in API_MATRIX.items()
    for who, status in zip(CLIENTS, statuses, strict=True)
]


def _lacking(owner: PartnerClient, scope: str) -> PartnerClient:
    """A client of the owning partner that holds every scope but ``scope``."""
    limited = make_partner_client("Pay Later Reporting", [s for s in ALL_SCOPES if s != scope])
    limited.api_client.partner = owner.partner
    limited.api_client.save(update_fields=["partner"])
    return limited


def _headers(client, request, who: str, scope: str) -> dict[str, str]:
    owner: PartnerClient = request.getfixturevalue("marketplace")
    if who == "no token":
        return {}
    if who == "invalid token":
        return {"HTTP_AUTHORIZATION": "Bearer not-a-token-we-issued"}
    if who == "back-office session":
        senior = request.getfixturevalue("senior")
        login(client, senior)
        return {}
    if who == "expired token":
        token = obtain_token(client, owner)
        checksum = hashlib.sha256(token.encode()).hexdigest()  # tokens are stored hashed, looked up by checksum
        AccessToken.objects.filter(token_checksum=checksum).update(expires=timezone.now() - timedelta(seconds=1))
    elif who == "client lacking scope":
        token = obtain_token(client, _lacking(owner, scope))
    elif who == "token lacking scope":  # the owner's client holds the scope, but did not ask for it
        token = obtain_token(client, owner, scope=" ".join(s for s in ALL_SCOPES if s != scope))
    elif who == "owner":
        token = obtain_token(client, owner)
    else:
        assert who == "other partner"
        token = obtain_token(client, request.getfixturevalue("other_partner"))
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.mark.parametrize(("kind", "method", "who", "expected"), API_ROWS)
def test_api(client, request, objects, reference_data, kind, method, who, expected):
    name, kwargs, scope, secret_of = API_URLS[kind]
    url = reverse(name, kwargs=kwargs(objects))
    secret = secret_of(objects) if secret_of else None
    headers = _headers(client, request, who, scope)
    before = world_state()

    # An empty JSON body: enough to tell "let in, the body was refused" (400) from "kept out" (401/403).
    if method == "POST":
        response = client.post(url, "{}", content_type="application/json", **headers)
    elif method == "DELETE":
        response = client.delete(url, **headers)
    else:
        response = client.get(url, **headers)

    assert response.status_code == expected, f"{method} {url} by {who}: {response.content[:300]!r}"
    body = response.content.decode()
    if expected >= 400:
        assert response["Content-Type"].startswith(API_ERROR)
        assert response.json()["status"] == expected
    if expected == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")
    if secret is not None:
        assert (secret in body) == (who == "owner" and expected == 200), "the owner's data, to the owner only"
    if expected == 204 and kind == "watch":
        assert not WatchedCompany.objects.filter(pk=objects.watch.pk).exists()
    elif expected == 204:
        assert not WebhookEndpoint.objects.filter(pk=objects.webhook.pk).exists()
    elif expected == 202 and kind == "redeliver":  # sent again, under the same webhook-id
        objects.delivery.refresh_from_db()
        assert objects.delivery.status == WebhookDelivery.Status.PENDING
    elif expected == 202:  # a human review asked for (an empty body is a valid request: no statement)
        assert objects.dossier.subject_requests.filter(kind="human_review", status="open").exists()
    elif kind in API_ACTIONS and expected < 300:
        assert world_state() != before, "the owner's action took effect"
    elif method != "GET":
        assert world_state() == before, "a refused or invalid request changes nothing"


# --- the matrix covers every URL --------------------------------------------------------------------

COVERED_NAMESPACES = ("dossiers", "scoring", "api", "subjects", "register", "accesslog", "alerts")


def _url_names(patterns: list, namespace: str = "") -> set[str]:
    names = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}:{pattern.namespace}" if namespace and pattern.namespace else pattern.namespace
            names |= _url_names(pattern.url_patterns, inner or namespace)
        elif isinstance(pattern, URLPattern) and pattern.name and namespace:
            names.add(f"{namespace}:{pattern.name}")
    return names


def test_every_url_of_the_back_office_and_the_api_is_in_the_matrix():
    routed = {name for name in _url_names(get_resolver().url_patterns) if name.split(":")[0] in COVERED_NAMESPACES}
    covered = {BACKOFFICE_URLS[kind][0] for kind, _ in BACKOFFICE_MATRIX} | {
        API_URLS[kind][0] for kind, _ in API_MATRIX
    }

    assert {name.split(":")[0] for name in routed} == set(COVERED_NAMESPACES)
    assert routed - covered == set(), "add these URLs to the permission matrix"
    assert covered - {"admin:index"} <= routed, "the matrix names URLs that no longer exist"
