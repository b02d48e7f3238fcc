"""The partner API's OpenAPI 3 description, served at /api/v1/schema/ (drf-spectacular).

Every annotation lives here rather than on the views: the views validate and call services, this module
says what they promise. Views are annotated through ``OpenApiViewExtension`` (a documented subclass
replaces the view while the schema is generated, never while serving). The serializers below whose name
ends in ``Doc`` describe responses only; request bodies are the views' own serializers, so the schema
cannot drift from what is validated. tests/test_api_schema.py checks the schema against the live API.
"""

from __future__ import annotations

from typing import Any

from csp.decorators import csp_replace
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.utils.decorators import method_decorator
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
    OpenApiViewExtension,
)
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiCallback,
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView
from rest_framework import serializers

from alerts.events import CRITICAL_EVENT_TYPES, EVENT_TYPES

PROBLEM = "application/problem+json"
SCORE_ID = "0b6c5f0e-3d0b-4a8e-9a57-2f1c4d7e8a90"
SIREN = "552100554"
VAT = "FR96552100554"

DESCRIPTION = """\
Credit scores for companies (B2B, by SIREN) and individuals (B2C, by the partner's own reference),
their outcomes, negative events reported by partners, and webhooks. The partner quick start is
`docs/api.md` in the repository.

**Authentication.** OAuth 2.0 client credentials only. `POST /o/token/` with HTTP Basic
`client_id:client_secret` (or both in the form) and the form body
`grant_type=client_credentials&scope=scores:write scores:read` answers
`{"access_token", "token_type": "Bearer", "expires_in": 3600, "scope"}`. Send
`Authorization: Bearer <token>` on every call; a token lives one hour, ask for a new one on a 401.
A client obtains only the scopes it was granted; each operation below names the scope it needs.

**Errors.** Every error is RFC 9457 `application/problem+json`: `type` is
`urn:riskoffice:problem:<slug>`, with `title`, `status`, `detail`, `instance`, and for invalid input
`errors`, an object from field path (`company.siren`, `bank_data[0]`, `body`) to messages.

**Limits.** Each client has a rate limit per minute (`429`, slug `throttled`, with `Retry-After`).
A sandbox client has an allowance of scores (by default 5 per 14 days; `429`, slug
`sandbox-allowance-exhausted`, with `Retry-After`). While the service is unavailable the API answers
`503` with `Retry-After`. Bodies over 1 MiB get `413`.
"""


def scopes_for(view: Any, method: str) -> list[str]:
    """The scopes an operation needs, as HasClientScope reads them: per method first, then the view's."""
    by_method = getattr(view, "required_scopes_by_method", None) or {}
    scopes = by_method.get(method.upper())
    if scopes is None:
        scopes = getattr(view, "required_scopes", None) or []
    return list(scopes)


class PartnerOAuth2Scheme(OpenApiAuthenticationExtension):
    """Client credentials against /o/token/, with the scopes each operation requires.

    drf-spectacular's own django-oauth-toolkit extension reads DOT's TokenHasScope permissions;
    ours (HasClientScope) read ``required_scopes`` / ``required_scopes_by_method`` instead.
    """

    target_class = "oauth2_provider.contrib.rest_framework.OAuth2Authentication"
    name = "oauth2"
    priority = 1

    def get_security_requirement(self, auto_schema: Any) -> dict[str, list[str]]:
        return {self.name: scopes_for(auto_schema.view, auto_schema.method)}

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "oauth2",
            "description": "OAuth 2.0 client credentials (RFC 6749 §4.4). Tokens live one hour.",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": "/o/token/",
                    "scopes": dict(settings.OAUTH2_PROVIDER["SCOPES"]),
                }
            },
        }


class StrictDecimalFieldSchema(OpenApiSerializerFieldExtension):
    """Amounts are accepted as a JSON number or a numeric string (dossiers.api.StrictDecimalField)."""

    target_class = "dossiers.api.StrictDecimalField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        field = self.target
        digits = field.max_digits - field.decimal_places
        number: dict[str, Any] = {"type": "number"}
        if field.min_value is not None:
            number["minimum"] = float(field.min_value)
        if field.max_value is not None:
            number["maximum"] = float(field.max_value)
        sign = "" if field.min_value is not None and field.min_value >= 0 else "-?"
        text = {
            "type": "string",
            "pattern": rf"^{sign}\d{{1,{digits}}}(\.\d{{1,{field.decimal_places}}})?$",
        }
        return {"anyOf": [number, text], "example": "25000.00"}


class EndpointSerializerSchema(OpenApiSerializerExtension):
    """The webhook registration body, named for what it is rather than after the view's serializer."""

    target_class = "alerts.api.EndpointSerializer"

    def get_name(self, auto_schema: Any, direction: str) -> str:
        return "WebhookEndpointRegistration"


class FlatObjectFieldSchema(OpenApiSerializerFieldExtension):
    """An event's ``details``: a small flat object (alerts.api.FlatObjectField)."""

    target_class = "alerts.api.FlatObjectField"

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        scalar = [
            {"type": "string", "maxLength": 200},
            {"type": "number"},
            {"type": "boolean"},
        ]
        return {
            "type": "object",
            "maxProperties": 20,
            "additionalProperties": {"anyOf": scalar, "nullable": True},
            "description": "Up to 20 keys (1–50 characters), each a string (≤ 200 characters), number, "
            "boolean or null.",
            "example": {"mandate": "RUM-000123"},
        }


# --- components -------------------------------------------------------------------------------


class ProblemDoc(serializers.Serializer):
    type = serializers.RegexField(
        r"^urn:riskoffice:problem:[a-z0-9-]+$",
        help_text="`urn:riskoffice:problem:<slug>`; the slug is stable, switch on it.",
    )
    title = serializers.CharField(help_text="A short summary of the kind of problem.")
    status = serializers.IntegerField(min_value=400, max_value=599, help_text="The HTTP status code.")
    detail = serializers.CharField(help_text="What went wrong with this request, for a human.")
    instance = serializers.CharField(help_text="The path of the request.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Invalid input only: field path (`company.siren`, `bank_data[0]`, `body`) to messages.",
    )

    class Meta:
        ref_name = "Problem"


class LinksDoc(serializers.Serializer):
    self = serializers.URLField(help_text="Where to GET the score.")

    class Meta:
        ref_name = "ScoreLinks"


class ScoreAcceptedDoc(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["pending", "scored", "failed"])
    links = LinksDoc()

    class Meta:
        ref_name = "ScoreAccepted"


class ScoredCompanyDoc(serializers.Serializer):
    siren = serializers.CharField()
    vat = serializers.CharField(allow_blank=True, help_text="Empty when unknown.")
    name = serializers.CharField(allow_blank=True, help_text="As the data sources give it; may be empty.")

    class Meta:
        ref_name = "ScoredCompany"


class EventCompanyDoc(serializers.Serializer):
    siren = serializers.CharField()

    class Meta:
        ref_name = "ReportedCompany"


EVENT_KINDS = ["insolvency_proceeding", "payment_delay", "sepa_incident", "debt_collection"]
COMPANY_EVENT_KINDS = [*EVENT_KINDS, "accounts_published"]


class ScoredIndividualDoc(serializers.Serializer):
    reference = serializers.CharField()

    class Meta:
        ref_name = "ScoredIndividual"


class FactorDoc(serializers.Serializer):
    feature = serializers.CharField(help_text="The feature's name, e.g. `avg_balance_12m`.")
    text = serializers.CharField(help_text="The reason in French, or English with `Accept-Language: en`.")
    direction = serializers.ChoiceField(
        choices=["increases_risk", "decreases_risk", "missing"],
        help_text="`missing`: the data was not available; it is never counted as lowering the risk.",
    )
    contribution = serializers.FloatField(help_text="Exact SHAP contribution, in log-odds.")
    value = serializers.JSONField(allow_null=True, help_text="The feature's value; null when missing.")

    class Meta:
        ref_name = "Factor"


_DECISIONS = ["accept", "guarantee", "refuse", "refer"]


class OutcomeDoc(serializers.Serializer):
    """What became of the credit (dossiers.representation.outcome_representation)."""

    status = serializers.ChoiceField(choices=["repaid", "defaulted", "written_off"])
    occurred_on = serializers.DateField()
    granted_amount = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    outstanding_amount = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    written_off_amount = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    recorded_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Outcome"


class HumanReviewDoc(serializers.Serializer):
    """A request for human review of the decision (riskoffice.subjects.review.review_representation)."""

    id = serializers.IntegerField(help_text="The request's id.")
    status = serializers.ChoiceField(choices=["open", "completed"], help_text="`open` until a human answers it.")
    requested_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField(help_text="One month after the request (GDPR Art. 12(3)).")
    completed_at = serializers.DateTimeField(allow_null=True)
    outcome = serializers.ChoiceField(
        choices=["confirmed", "changed"],
        allow_null=True,
        help_text="Once completed: the decision `confirmed`, or `changed` by an analyst's override.",
    )

    class Meta:
        ref_name = "HumanReview"


class HumanReviewAnswerDoc(HumanReviewDoc):
    links = serializers.DictField(child=serializers.URLField(), help_text="`score`: the score's URL.")

    class Meta:
        ref_name = "HumanReviewRequestAnswer"


class ScoreDoc(serializers.Serializer):
    """The dossier with its latest score (dossiers.representation.score_representation)."""

    id = serializers.UUIDField()
    status = serializers.ChoiceField(
        choices=["pending", "scored", "failed"], help_text="`pending` comes with `Retry-After`."
    )
    created_at = serializers.DateTimeField()
    company = ScoredCompanyDoc(allow_null=True, help_text="The company (B2B), or null.")
    individual = ScoredIndividualDoc(allow_null=True, help_text="The individual (B2C), or null.")
    requested_amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    score = serializers.IntegerField(allow_null=True, help_text="B2B 0–1000; B2C 300–850.")
    probability_of_default = serializers.FloatField(allow_null=True, min_value=0, max_value=1)
    band = serializers.ChoiceField(choices=["A", "B", "C", "D", "E"], allow_null=True)
    decision = serializers.ChoiceField(
        choices=_DECISIONS, allow_null=True, help_text="The decision in force: the policy's, or an analyst's."
    )
    recommendation = serializers.ChoiceField(choices=_DECISIONS, allow_null=True, help_text="The policy's.")
    decision_overridden = serializers.BooleanField(required=False, help_text="Present once scored.")
    recommended_limit = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    explainability = FactorDoc(many=True, help_text="Up to four reasons of each kind, ordered for the decision.")
    score_version = serializers.IntegerField(
        required=False, help_text="Present once scored: 1 for the application, then one more per re-score."
    )
    score_trigger = serializers.ChoiceField(
        choices=["application", "challenge", "retry"], required=False, help_text="What produced this version."
    )
    model_version = serializers.CharField(allow_null=True)
    policy_version = serializers.CharField(allow_null=True)
    scored_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(required=False, help_text="Only when `status` is `failed`.")
    outcome = OutcomeDoc(allow_null=True, help_text="What became of the credit, once reported.")
    human_review = HumanReviewDoc(
        allow_null=True, help_text="The open request for human review, else the latest completed one, else null."
    )
    decision_final = serializers.BooleanField(
        help_text="False until scored, and while a human review is open: the decision may still change."
    )

    class Meta:
        ref_name = "Score"


class ScorePageDoc(serializers.Serializer):
    results = ScoreDoc(many=True)
    next = serializers.URLField(allow_null=True, help_text="The next page, or null.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, or null.")

    class Meta:
        ref_name = "ScorePage"


class WebhookEndpointDoc(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES), help_text="The subscribed types; empty means all."
    )
    mode = serializers.ChoiceField(
        choices=["immediate", "digest"],
        help_text="`digest`: non-critical events are bundled into one `digest.daily` a day; critical ones still "
        "leave at once.",
    )
    is_active = serializers.BooleanField(
        help_text="False once disabled (a 410, or failing for days): nothing is sent until resumed."
    )
    paused = serializers.BooleanField(help_text="Paused: events wait, and leave when it is resumed.")
    paused_at = serializers.DateTimeField(allow_null=True)
    failing_since = serializers.DateTimeField(
        allow_null=True, help_text="The first failed attempt since the last success; null while all is well."
    )
    disabled_at = serializers.DateTimeField(allow_null=True)
    disabled_reason = serializers.CharField(allow_blank=True)
    previous_secret_expires_at = serializers.DateTimeField(
        allow_null=True, help_text="After a rotation: until then the previous secret signs too."
    )
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "WebhookEndpoint"


class WebhookEndpointCreatedDoc(WebhookEndpointDoc):
    secret = serializers.CharField(help_text="`whsec_…`, shown this once: sign-check deliveries with it.")

    class Meta:
        ref_name = "WebhookEndpointCreated"


class WebhookEndpointListDoc(serializers.Serializer):
    results = WebhookEndpointDoc(many=True)

    class Meta:
        ref_name = "WebhookEndpointList"


DELIVERY_STATUSES = ["pending", "delivered", "failed", "cancelled", "held", "digested"]
DELIVERY_EVENT_TYPES = [*EVENT_TYPES, "digest.daily"]


class WebhookDeliveryDoc(serializers.Serializer):
    message_id = serializers.CharField(help_text="The `webhook-id` header: the same on every retry and redelivery.")
    event_id = serializers.CharField(help_text="The event's `id` (`evt_…`), the same in every endpoint's copy.")
    event_type = serializers.ChoiceField(choices=DELIVERY_EVENT_TYPES)
    status = serializers.ChoiceField(
        choices=DELIVERY_STATUSES,
        help_text="`pending` (to send, or retrying), `delivered` (a 2xx), `failed` (retries exhausted), "
        "`cancelled` (the endpoint was disabled), `held` (waiting for the daily digest), `digested` (sent in one).",
    )
    attempts = serializers.IntegerField(help_text="Attempts since the last redelivery.")
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField(allow_blank=True)
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    digest_message_id = serializers.CharField(allow_null=True, help_text="`digested`: the digest that carried it.")
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "WebhookDelivery"


class DeliveryAttemptDoc(serializers.Serializer):
    number = serializers.IntegerField(help_text="1 for the first attempt; numbers go on across redeliveries.")
    attempted_at = serializers.DateTimeField()
    address = serializers.CharField(allow_blank=True, help_text="The IP address connected to.")
    status_code = serializers.IntegerField(allow_null=True, help_text="Null when no answer came.")
    latency_ms = serializers.IntegerField(allow_null=True)
    response_excerpt = serializers.CharField(allow_blank=True, help_text="Up to 500 characters of the answer.")
    error = serializers.CharField(allow_blank=True)
    redelivery = serializers.BooleanField(help_text="The first attempt of a redelivery you asked for.")

    class Meta:
        ref_name = "DeliveryAttempt"


class WebhookDeliveryDetailDoc(WebhookDeliveryDoc):
    payload = serializers.DictField(
        help_text="The body sent: the event's envelope (`id`, `type`, `timestamp`, `data`)."
    )
    attempt_log = DeliveryAttemptDoc(many=True)

    class Meta:
        ref_name = "WebhookDeliveryDetail"


class WebhookDeliveryPageDoc(serializers.Serializer):
    results = WebhookDeliveryDoc(many=True)
    next = serializers.URLField(allow_null=True, help_text="The next page, or null.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, or null.")

    class Meta:
        ref_name = "WebhookDeliveryPage"


class MonitoredCompanyDoc(serializers.Serializer):
    siren = serializers.CharField()
    name = serializers.CharField(allow_blank=True, help_text="As the data sources give it; may be empty.")

    class Meta:
        ref_name = "MonitoredCompany"


class WatchDoc(serializers.Serializer):
    company = MonitoredCompanyDoc()
    watched_since = serializers.DateTimeField()
    has_open_exposure = serializers.BooleanField(
        help_text="You also hold open exposure on it (a granted credit with no outcome yet)."
    )

    class Meta:
        ref_name = "Watch"


class WatchPageDoc(serializers.Serializer):
    results = WatchDoc(many=True)
    next = serializers.URLField(allow_null=True, help_text="The next page, or null.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, or null.")

    class Meta:
        ref_name = "WatchPage"


class RecordedOutcomeDoc(OutcomeDoc):
    id = serializers.UUIDField(help_text="The score's id.")
    links = serializers.DictField(child=serializers.URLField(), help_text="`score`: the score's URL.")

    class Meta:
        ref_name = "RecordedOutcome"


class EventSubjectDoc(serializers.Serializer):
    company = EventCompanyDoc(required=False)
    individual = ScoredIndividualDoc(required=False)

    class Meta:
        ref_name = "EventSubject"


class NegativeEventDoc(serializers.Serializer):
    id = serializers.IntegerField()
    event_id = serializers.CharField(help_text="Your own id for the event.")
    kind = serializers.ChoiceField(choices=EVENT_KINDS)
    occurred_on = serializers.DateField()
    subject = EventSubjectDoc(help_text="`company` or `individual`.")
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    days_late = serializers.IntegerField(allow_null=True)
    reason_code = serializers.CharField(allow_null=True)
    details = serializers.DictField(help_text="The flat object you sent, or {}.")
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "NegativeEvent"


EVENT_ID_HELP = "`evt_…`: the event's id, the same in every endpoint's copy and on every retry."


class ScoreCompletedDoc(serializers.Serializer):
    """A webhook delivery's body (Standard Webhooks): the event's id and type, when it happened, and the score."""

    id = serializers.CharField(help_text=EVENT_ID_HELP)
    type = serializers.ChoiceField(choices=["score.completed"])
    timestamp = serializers.DateTimeField(help_text="When the event was written, UTC.")
    data = ScoreDoc(help_text="The score exactly as `GET /api/v1/scores/{id}` shows it.")

    class Meta:
        ref_name = "ScoreCompletedEvent"


def _event_doc(ref_name: str, types: list[str], data: type[serializers.Serializer], doc: str) -> type:
    """A webhook event's envelope (``id``, ``type``, ``timestamp``, ``data``) around its data, for the schema."""
    fields = {
        "__doc__": doc,
        "__module__": __name__,
        "Meta": type("Meta", (), {"ref_name": ref_name}),
        "id": serializers.CharField(help_text=EVENT_ID_HELP),
        "type": serializers.ChoiceField(choices=types),
        "timestamp": serializers.DateTimeField(help_text="When the event was written, UTC."),
        "data": data(),
    }
    return type(f"{ref_name}Doc", (serializers.Serializer,), fields)


class DossierChallengedDataDoc(serializers.Serializer):
    id = serializers.UUIDField(help_text="The dossier (score) id.")
    challenge_id = serializers.IntegerField()
    corrected = serializers.ListField(
        child=serializers.CharField(), help_text="What the analyst corrected: `requested_amount`, a feature name..."
    )
    source_reference = serializers.CharField(help_text="The document the corrections come from.")
    challenged_at = serializers.DateTimeField()

    class Meta:
        ref_name = "DossierChallenged"


DossierChallengedDoc = _event_doc(
    "DossierChallengedEvent",
    ["dossier.challenged"],
    DossierChallengedDataDoc,
    "An analyst disputed the recommendation and corrected inputs; a `score.completed` with the new version follows.",
)


class DecisionOverriddenDataDoc(serializers.Serializer):
    id = serializers.UUIDField(help_text="The dossier (score) id.")
    decision = serializers.ChoiceField(choices=_DECISIONS, help_text="Now in force.")
    previous_decision = serializers.ChoiceField(choices=_DECISIONS)
    reason_code = serializers.CharField(help_text="The override's reason code (free text stays internal).")
    overridden_at = serializers.DateTimeField()
    four_eyes = serializers.BooleanField(help_text="True when a second, senior analyst approved it.")
    approved_by_role = serializers.CharField(allow_null=True)

    class Meta:
        ref_name = "DecisionOverridden"


DecisionOverriddenDoc = _event_doc(
    "DecisionOverriddenEvent",
    ["decision.overridden"],
    DecisionOverriddenDataDoc,
    "An override is final: at once, or when a second analyst approved it. Pending ones are never sent.",
)


class HumanReviewRequestedDataDoc(serializers.Serializer):
    id = serializers.UUIDField(help_text="The dossier (score) id.")
    request_id = serializers.IntegerField()
    channel = serializers.ChoiceField(
        choices=["partner_api", "back_office"], help_text="Through your API call, or recorded by an analyst."
    )
    decision = serializers.ChoiceField(choices=_DECISIONS, help_text="The decision in force, now not final.")
    requested_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField()

    class Meta:
        ref_name = "HumanReviewRequested"


HumanReviewRequestedEventDoc = _event_doc(
    "HumanReviewRequestedEvent",
    ["human_review.requested"],
    HumanReviewRequestedDataDoc,
    "A person asked for a human to review the decision; it is not final until the review is completed.",
)


class HumanReviewCompletedDataDoc(serializers.Serializer):
    id = serializers.UUIDField(help_text="The dossier (score) id.")
    request_id = serializers.IntegerField()
    outcome = serializers.ChoiceField(choices=["confirmed", "changed"])
    decision = serializers.ChoiceField(choices=_DECISIONS, help_text="The decision in force, now final.")
    previous_decision = serializers.ChoiceField(
        choices=_DECISIONS, help_text="Before the override, when `changed`; else the same as `decision`."
    )
    requested_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField()
    reviewed_by_role = serializers.ChoiceField(choices=["analyst", "senior_analyst"])

    class Meta:
        ref_name = "HumanReviewCompleted"


HumanReviewCompletedEventDoc = _event_doc(
    "HumanReviewCompletedEvent",
    ["human_review.completed"],
    HumanReviewCompletedDataDoc,
    "An analyst completed the review: the decision confirmed, or changed (a `decision.overridden` came first).",
)


class OutcomeEventDataDoc(serializers.Serializer):
    id = serializers.UUIDField(help_text="The dossier (score) id.")
    status = serializers.ChoiceField(choices=["repaid", "defaulted", "written_off"])
    occurred_on = serializers.DateField()
    granted_amount = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    outstanding_amount = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    written_off_amount = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    source = serializers.ChoiceField(choices=["back-office", "api", "import"])

    class Meta:
        ref_name = "OutcomeEventData"


OutcomeEventDoc = _event_doc(
    "OutcomeEvent",
    ["outcome.recorded", "outcome.corrected"],
    OutcomeEventDataDoc,
    "`outcome.recorded` (a new outcome) or `outcome.corrected` (an analyst corrected it, with a reason).",
)


class ErasedScoreDoc(serializers.Serializer):
    id = serializers.UUIDField(help_text="Your score (dossier) id.")
    erased = serializers.BooleanField(help_text="False: kept under a legal retention period, until `kept_until`.")
    kept_until = serializers.DateField(required=False, help_text="Only when kept.")
    why_kept = serializers.CharField(required=False, help_text="Only when kept: the legal ground.")

    class Meta:
        ref_name = "ErasedScore"


class DataSubjectErasedDataDoc(serializers.Serializer):
    subject_type = serializers.ChoiceField(choices=["individual", "company"])
    scores = ErasedScoreDoc(many=True, help_text="Your scores about the subject: never a name or a reference.")
    erased = serializers.ListField(child=serializers.CharField(), help_text="What was erased.")
    instruction = serializers.CharField()

    class Meta:
        ref_name = "DataSubjectErasedData"


DataSubjectErasedEventDoc = _event_doc(
    "DataSubjectErasedEvent",
    ["data_subject.erased"],
    DataSubjectErasedDataDoc,
    "A person's (or a sole trader's) data were erased or anonymised at their request (GDPR Art. 17).",
)


# --- monitoring events (alerts/monitoring.py) --------------------------------------------------------


class MonitoringFactorDoc(serializers.Serializer):
    """A reason of a re-score, as stored with it: both languages side by side."""

    feature = serializers.CharField(help_text="The feature's name, e.g. `open_insolvency_proceeding`.")
    label = serializers.DictField(child=serializers.CharField(), help_text='`{"en": …, "fr": …}`.')
    text = serializers.DictField(child=serializers.CharField(), help_text='The reason, `{"en": …, "fr": …}`.')
    direction = serializers.ChoiceField(choices=["increases_risk", "decreases_risk", "missing"])
    contribution = serializers.FloatField(help_text="Exact SHAP contribution, in log-odds.")
    value = serializers.JSONField(allow_null=True, help_text="The feature's value; null when missing.")
    missing = serializers.BooleanField()

    class Meta:
        ref_name = "MonitoringFactor"


class ScoreChangeDataDoc(serializers.Serializer):
    company = MonitoredCompanyDoc()
    score = serializers.IntegerField(help_text="The new score, 0–1000.")
    previous_score = serializers.IntegerField(help_text="The company's score before this re-score.")
    delta = serializers.IntegerField(help_text="`score - previous_score`: negative when it fell.")
    band = serializers.ChoiceField(choices=["A", "B", "C", "D", "E"])
    previous_band = serializers.ChoiceField(choices=["A", "B", "C", "D", "E"])
    probability_of_default = serializers.FloatField(min_value=0, max_value=1)
    factors = MonitoringFactorDoc(
        many=True,
        help_text="The top reasons of the new score; empty when it was not explained (a full portfolio re-score "
        "explains only moves of `PORTFOLIO_MOVE_THRESHOLD`, 20 points, or a band change).",
    )
    trigger = serializers.ChoiceField(
        choices=["daily", "negative_event", "manual"],
        help_text="The daily run, a negative event on the company, or a run an analyst started.",
    )
    run_id = serializers.IntegerField(help_text="The re-score run.")
    scored_at = serializers.DateTimeField()
    score_ids = serializers.ListField(
        child=serializers.UUIDField(),
        help_text="Your scores on this company with open exposure; empty if you watch it only.",
    )

    class Meta:
        ref_name = "ScoreChangeData"


ScoreChangeEventDoc = _event_doc(
    "ScoreChangeEvent",
    ["score.dropped", "score.band_changed", "score.changed"],
    ScoreChangeDataDoc,
    "A monitored company was re-scored and its score moved: one event per company and re-score.",
)


class NegativeEventDataDoc(serializers.Serializer):
    id = serializers.IntegerField(help_text="The event's id on our side.")
    kind = serializers.ChoiceField(choices=COMPANY_EVENT_KINDS)
    occurred_on = serializers.DateField()
    source = serializers.ChoiceField(
        choices=["partner", "bodacc", "analyst"],
        help_text="`partner`: you reported it (a partner's report is sent to that partner only).",
    )
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    days_late = serializers.IntegerField(allow_null=True)
    reason_code = serializers.CharField(allow_null=True)
    details = serializers.DictField(help_text="A small flat object; an analyst's note is never sent.")

    class Meta:
        ref_name = "CompanyNegativeEvent"


class CompanyEventDataDoc(serializers.Serializer):
    company = MonitoredCompanyDoc()
    event = NegativeEventDataDoc()
    score_ids = serializers.ListField(
        child=serializers.UUIDField(),
        help_text="Your scores on this company with open exposure; empty if you watch it only.",
    )

    class Meta:
        ref_name = "CompanyEventData"


CompanyEventDoc = _event_doc(
    "CompanyEvent",
    [
        "company.insolvency_proceeding",
        "company.payment_delay",
        "company.sepa_rejection",
        "company.debt_collection",
        "company.accounts_published",
    ],
    CompanyEventDataDoc,
    "A negative event on a company you hold open exposure on or watch.",
)


class DigestDataDoc(serializers.Serializer):
    events = serializers.ListField(
        child=serializers.DictField(),
        help_text="The day's held events, oldest first, each its own envelope (`id`, `type`, `timestamp`, `data`) "
        "as it would have been sent alone; at most 1000 per digest.",
    )

    class Meta:
        ref_name = "DigestData"


DigestEventDoc = _event_doc(
    "DigestEvent",
    ["digest.daily"],
    DigestDataDoc,
    "A digest endpoint's non-critical events of the day, in one delivery.",
)


# --- headers ---------------------------------------------------------------------------------


def retry_after(*codes: int) -> OpenApiParameter:
    return OpenApiParameter(
        "Retry-After",
        OpenApiTypes.INT,
        OpenApiParameter.HEADER,
        description="Seconds to wait before trying again (or, on a pending score, before polling again).",
        response=list(codes),
    )


RETRY_AFTER_HEADER = {
    "schema": {"type": "integer", "minimum": 0},
    "description": "Seconds to wait before trying again.",
    "required": True,
}
LOCATION = OpenApiParameter(
    "Location", OpenApiTypes.URI, OpenApiParameter.HEADER, description="The score's URL.", response=[200, 202]
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
    OpenApiParameter.HEADER,
    description=(
        "Optional, 1–255 printable ASCII characters, kept 24 h per client. The same key with the same body "
        "replays the first answer (with `Idempotent-Replayed: true`); with another body: 422 "
        "`idempotency-key-reused`; while the first is still being answered: 409 `idempotency-key-in-flight`."
    ),
)
IDEMPOTENT_REPLAYED = OpenApiParameter(
    "Idempotent-Replayed",
    str,
    OpenApiParameter.HEADER,
    enum=["true"],
    description="Present when this is the stored answer to an earlier request with the same Idempotency-Key.",
    response=[200, 201, 202, 400],
)
PREFER = OpenApiParameter(
    "Prefer",
    str,
    OpenApiParameter.HEADER,
    description=(
        "RFC 7240. `wait=N` (seconds, at most 10; 0 asks for nothing): the server scores the dossier "
        "while the request waits and answers 200 with the score; 202 as usual if it could not be "
        "scored yet (it then goes to the background workers). Other preferences are ignored."
    ),
    examples=[OpenApiExample("wait", value="wait=5")],
)
PREFERENCE_APPLIED = OpenApiParameter(
    "Preference-Applied",
    str,
    OpenApiParameter.HEADER,
    description="`wait=N` when the score came back within the wait.",
    response=[200],
)
ACCEPT_LANGUAGE = OpenApiParameter(
    "Accept-Language",
    str,
    OpenApiParameter.HEADER,
    description="`en` for English explanation texts; French otherwise.",
)
SCORE_ID_PARAMETER = OpenApiParameter(
    "id", str, OpenApiParameter.PATH, description="The score's id (a UUID); another partner's id is a 404."
)

# --- errors ----------------------------------------------------------------------------------

_ERROR_TEXT = {
    400: ("Invalid input: `errors` names each field.", "validation-error", "Invalid request"),
    401: ("No valid bearer token: ask /o/token/ for one.", "unauthenticated", "Authentication required"),
    403: ("The token lacks this operation's scope.", "forbidden", "Forbidden"),
    404: ("No such resource for this client.", "not-found", "Not found"),
    409: ("Conflict with the current state.", "conflict", "Conflict"),
    413: ("The body is larger than 1 MiB.", "payload-too-large", "Payload too large"),
    415: ("The body is not `application/json`.", "unsupported-media-type", "Unsupported media type"),
    422: ("The request cannot be processed as sent.", "unprocessable", "Unprocessable content"),
    429: ("Rate limit or sandbox allowance reached: see `Retry-After`.", "throttled", "Too many requests"),
    503: (
        "Temporarily unavailable (database, or scoring behind: `scoring-backlog`): see `Retry-After`.",
        "service-unavailable",
        "Service unavailable",
    ),
}


def _problem_example(status: int, slug: str, title: str, detail: str, path: str) -> OpenApiExample:
    body: dict[str, Any] = {
        "type": f"urn:riskoffice:problem:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": path,
    }
    if slug == "validation-error":
        body["errors"] = {"company.siren": ["Invalid SIREN: the Luhn check digit does not match."]}
        body["detail"] = "company.siren: Invalid SIREN: the Luhn check digit does not match."
    return OpenApiExample(slug, value=body, status_codes=[status], response_only=True, media_type=PROBLEM)


def problems(
    path: str, *codes: int, slugs: dict[int, list[tuple[str, str, str]]] | None = None
) -> dict[tuple[int, str], Any]:
    """The problem+json responses of an operation, with a description and an example per slug.

    ``slugs`` names an operation's own problems for a status: [(slug, title, detail)], replacing the generic one.
    """
    slugs = slugs or {}
    responses = {}
    for code in codes:
        detail, slug, title = _ERROR_TEXT[code]
        own = slugs.get(code) or [(slug, title, detail)]
        description = detail if code not in slugs else " ".join(f"`{s}`: {d}" for s, _, d in own)
        responses[(code, PROBLEM)] = OpenApiResponse(
            ProblemDoc,
            description=description,
            examples=[_problem_example(code, s, t, d, path) for s, t, d in own],
        )
    return responses


COMMON_ERRORS = (401, 403, 429, 503)
OUTCOME_PROBLEMS = {
    409: [
        (
            "outcome-already-recorded",
            "Outcome already recorded",
            "This credit's outcome is already recorded; only a default may be followed by a write-off.",
        ),
        ("dossier-not-scored", "Dossier not scored", "Only a scored dossier has an outcome."),
    ]
}
HUMAN_REVIEW_PROBLEMS = {
    409: [
        ("dossier-not-scored", "Dossier not scored", "Only a scored dossier has a decision to review."),
        (
            "idempotency-key-in-flight",
            "Idempotency key in flight",
            "The first request with this Idempotency-Key is still being answered; retry after Retry-After.",
        ),
    ],
    422: [
        (
            "idempotency-key-reused",
            "Idempotency key reused",
            "This Idempotency-Key was used with another request body.",
        )
    ],
}
EVENT_PROBLEMS = {
    409: [
        (
            "event-id-reused",
            "Event id reused",
            "This event_id was already reported with other content; give each event its own id.",
        )
    ]
}
SCORE_CREATE_PROBLEMS = {
    409: [
        (
            "idempotency-key-in-flight",
            "Idempotency key in flight",
            "The first request with this Idempotency-Key is still being answered; retry after Retry-After.",
        )
    ],
    422: [
        (
            "idempotency-key-reused",
            "Idempotency key reused",
            "This Idempotency-Key was used with another request body.",
        )
    ],
    429: [
        ("throttled", "Too many requests", "Past this client's rate limit; retry after Retry-After."),
        (
            "sandbox-allowance-exhausted",
            "Sandbox allowance exhausted",
            "This sandbox client may request 5 scores over 14 days and has used them.",
        ),
    ],
}
POST_ERRORS = (400, 401, 403, 413, 415, 429, 503)


# --- examples --------------------------------------------------------------------------------
# Built from valid values (SIREN 552100554 passes the Luhn check, FR96552100554 is its VAT number):
# tests/test_api_schema.py sends every request example to the live API and expects it accepted.

SCORE_REQUEST_EXAMPLES = [
    OpenApiExample(
        "company",
        summary="A company (B2B)",
        value={
            "company": {"siren": SIREN, "vat": VAT},
            "bank_data": ["bridge-token-3f9a1c"],
            "requested_amount": 25000,
        },
        request_only=True,
    ),
    OpenApiExample(
        "company with statements",
        summary="A company with its latest financial statements",
        value={
            "company": {"siren": SIREN},
            "requested_amount": "40000.00",
            "financial_statements": [
                {
                    "fiscal_year_end": "2024-12-31",
                    "revenue": "1250000.00",
                    "net_income": "84000.00",
                    "equity": "410000.00",
                    "total_assets": "980000.00",
                }
            ],
        },
        request_only=True,
    ),
    OpenApiExample(
        "individual",
        summary="An individual (B2C), by the partner's own reference",
        value={"individual": {"reference": "CUST-00042"}, "bank_data": ["bridge-token-77e2"], "requested_amount": 3000},
        request_only=True,
    ),
]

SCORE_EXAMPLE = {
    "id": SCORE_ID,
    "status": "scored",
    "created_at": "2026-03-02T10:15:00.120000+01:00",
    "company": {"siren": SIREN, "vat": VAT, "name": "Michelin"},
    "individual": None,
    "requested_amount": "25000.00",
    "score": 742,
    "probability_of_default": 0.0123,
    "band": "B",
    "decision": "accept",
    "recommendation": "accept",
    "decision_overridden": False,
    "recommended_limit": "18500.00",
    "explainability": [
        {
            "feature": "avg_balance_12m",
            "text": "Solde moyen positif sur 12 mois (8 420 €)",
            "direction": "decreases_risk",
            "contribution": -0.412,
            "value": 8420.0,
        }
    ],
    "model_version": "b2b-v1",
    "policy_version": "b2b-policy-v1",
    "scored_at": "2026-03-02T10:15:01.480000+01:00",
    "outcome": None,
    "human_review": None,
    "decision_final": True,
}

HUMAN_REVIEW_EXAMPLE = {
    "id": 311,
    "status": "open",
    "requested_at": "2026-03-09T14:02:00+01:00",
    "due_at": "2026-04-09T14:02:00+02:00",
    "completed_at": None,
    "outcome": None,
    "links": {"score": f"https://api.riskoffice.example/api/v1/scores/{SCORE_ID}"},
}

SCORE_ACCEPTED_EXAMPLE = {
    "id": SCORE_ID,
    "status": "pending",
    "links": {"self": f"https://api.riskoffice.example/api/v1/scores/{SCORE_ID}"},
}

OUTCOME_REQUEST_EXAMPLES = [
    OpenApiExample(
        "repaid",
        summary="Repaid in full",
        value={"status": "repaid", "occurred_on": "2025-06-30", "granted_amount": "25000.00"},
        request_only=True,
    ),
    OpenApiExample(
        "written off",
        summary="Written off (after a default, or directly)",
        value={
            "status": "written_off",
            "occurred_on": "2025-09-30",
            "granted_amount": "25000.00",
            "outstanding_amount": "12000.00",
            "written_off_amount": "9500.00",
        },
        request_only=True,
    ),
]

OUTCOME_EXAMPLE = {
    "id": SCORE_ID,
    "status": "repaid",
    "occurred_on": "2025-06-30",
    "granted_amount": "25000.00",
    "outstanding_amount": None,
    "written_off_amount": None,
    "recorded_at": "2025-07-01T09:12:00+02:00",
    "updated_at": "2025-07-01T09:12:00+02:00",
    "links": {"score": f"https://api.riskoffice.example/api/v1/scores/{SCORE_ID}"},
}

EVENT_REQUEST_EXAMPLES = [
    OpenApiExample(
        "payment delay",
        summary="A company pays 45 days late",
        value={
            "event_id": "evt-2025-000417",
            "kind": "payment_delay",
            "occurred_on": "2025-05-12",
            "company": {"siren": SIREN},
            "amount": "1250.00",
            "days_late": 45,
        },
        request_only=True,
    ),
    OpenApiExample(
        "SEPA incident",
        summary="A direct debit of an individual returned for insufficient funds",
        value={
            "event_id": "evt-2025-000418",
            "kind": "sepa_incident",
            "occurred_on": "2025-05-20",
            "individual": {"reference": "CUST-00042"},
            "amount": 89.9,
            "reason_code": "AM04",
            "details": {"mandate": "RUM-000123"},
        },
        request_only=True,
    ),
]

EVENT_EXAMPLE = {
    "id": 981,
    "event_id": "evt-2025-000417",
    "kind": "payment_delay",
    "occurred_on": "2025-05-12",
    "subject": {"company": {"siren": SIREN}},
    "amount": "1250.00",
    "days_late": 45,
    "reason_code": None,
    "details": {},
    "created_at": "2025-05-13T08:00:00+02:00",
}

WEBHOOK_EXAMPLE = {
    "id": 12,
    "url": "https://partner.example/hooks/riskoffice",
    "event_types": ["score.completed", "score.dropped", "company.insolvency_proceeding"],
    "mode": "immediate",
    "is_active": True,
    "paused": False,
    "paused_at": None,
    "failing_since": None,
    "disabled_at": None,
    "disabled_reason": "",
    "previous_secret_expires_at": None,
    "created_at": "2026-03-02T10:00:00+01:00",
}

MESSAGE_ID = "msg_2b1e4c0f9a7d4e52b3c8d6f1a0e9b7c4"
EVENT_ID = "evt_8f14e45fceea4f1e9c1d2b3a4c5d6e7f"
COMPANY = {"siren": SIREN, "name": "Michelin"}

SCORE_DROPPED_EXAMPLE = {
    "id": EVENT_ID,
    "type": "score.dropped",
    "timestamp": "2026-03-03T05:00:04.512Z",
    "data": {
        "company": COMPANY,
        "score": 589,
        "previous_score": 702,
        "delta": -113,
        "band": "C",
        "previous_band": "B",
        "probability_of_default": 0.022206,
        "factors": [
            {
                "feature": "open_insolvency_proceeding",
                "label": {"en": "Insolvency proceeding", "fr": "Procédure collective"},
                "text": {"en": "Insolvency proceeding open", "fr": "Procédure collective en cours"},
                "direction": "increases_risk",
                "contribution": 1.284,
                "value": 1,
                "missing": False,
            }
        ],
        "trigger": "negative_event",
        "run_id": 4187,
        "scored_at": "2026-03-03T05:00:04.498211+00:00",
        "score_ids": [SCORE_ID],
    },
}

BAND_CHANGED_EXAMPLE = {
    "id": "evt_1c2b3a4d5e6f47089a8b7c6d5e4f3a2b",
    "type": "score.band_changed",
    "timestamp": "2026-03-04T01:00:03.902Z",
    "data": {
        **SCORE_DROPPED_EXAMPLE["data"],
        "score": 618,
        "previous_score": 640,
        "delta": -22,
        "band": "C",
        "previous_band": "B",
        "probability_of_default": 0.015985,
        "factors": [
            {
                "feature": "payment_delays_12m",
                "label": {"en": "Payment delays", "fr": "Retards de paiement"},
                "text": {"en": "Payment delays reported (3)", "fr": "Retards de paiement signalés (3)"},
                "direction": "increases_risk",
                "contribution": 0.412,
                "value": 3,
                "missing": False,
            }
        ],
        "trigger": "daily",
        "run_id": 4190,
        "scored_at": "2026-03-04T01:00:03.860412+00:00",
    },
}

INSOLVENCY_EXAMPLE = {
    "id": "evt_3c59dc048e8850243be8079a5c74d079",
    "type": "company.insolvency_proceeding",
    "timestamp": "2026-03-03T05:00:01.020Z",
    "data": {
        "company": COMPANY,
        "event": {
            "id": 982,
            "kind": "insolvency_proceeding",
            "occurred_on": "2026-03-02",
            "source": "bodacc",
            "amount": None,
            "days_late": None,
            "reason_code": None,
            "details": {
                "bodacc_id": "A202600412345",
                "tribunal": "Tribunal de commerce de Clermont-Ferrand",
                "jugement": "Jugement d'ouverture d'une procédure de redressement judiciaire",
                "proceeding": "redressement",
                "published_on": "2026-03-03",
            },
        },
        "score_ids": [SCORE_ID],
    },
}

DIGEST_EXAMPLE = {
    "id": "evt_a87ff679a2f3471d8e3c8d6c1b5f4a0e",
    "type": "digest.daily",
    "timestamp": "2026-03-04T06:00:00.003Z",
    "data": {
        "events": [
            {
                "id": "evt_e4da3b7fbbce4345a8d2c0f7e1b6a9d3",
                "type": "score.changed",
                "timestamp": "2026-03-04T01:00:03.871Z",
                "data": {
                    **SCORE_DROPPED_EXAMPLE["data"],
                    "score": 626,
                    "previous_score": 640,
                    "delta": -14,
                    "band": "B",
                    "previous_band": "B",
                    "probability_of_default": 0.014595,
                    "factors": [
                        {
                            "feature": "max_payment_delay_days",
                            "label": {"en": "Longest payment delay", "fr": "Plus long retard de paiement"},
                            "text": {"en": "Long payment delay (45 days)", "fr": "Retard de paiement long (45 jours)"},
                            "direction": "increases_risk",
                            "contribution": 0.121,
                            "value": 45,
                            "missing": False,
                        }
                    ],
                    "trigger": "daily",
                    "run_id": 4190,
                    "scored_at": "2026-03-04T01:00:03.860412+00:00",
                },
            }
        ]
    },
}

DELIVERY_EXAMPLE = {
    "message_id": MESSAGE_ID,
    "event_id": EVENT_ID,
    "event_type": "score.dropped",
    "status": "delivered",
    "attempts": 2,
    "last_status_code": 204,
    "last_error": "",
    "next_attempt_at": None,
    "delivered_at": "2026-03-03T06:00:10.420000+01:00",
    "digest_message_id": None,
    "created_at": "2026-03-03T06:00:04.530000+01:00",
}

DELIVERY_DETAIL_EXAMPLE = {
    **DELIVERY_EXAMPLE,
    "payload": SCORE_DROPPED_EXAMPLE,
    "attempt_log": [
        {
            "number": 1,
            "attempted_at": "2026-03-03T06:00:04.600000+01:00",
            "address": "203.0.113.10",
            "status_code": 503,
            "latency_ms": 84,
            "response_excerpt": "Service Unavailable",
            "error": "HTTP 503",
            "redelivery": False,
        },
        {
            "number": 2,
            "attempted_at": "2026-03-03T06:00:10.410000+01:00",
            "address": "203.0.113.10",
            "status_code": 204,
            "latency_ms": 41,
            "response_excerpt": "",
            "error": "",
            "redelivery": False,
        },
    ],
}

# SIREN 732829320: the company tests/test_api_schema.py scores before sending each request example.
WATCHED_SIREN = "732829320"
WATCH_EXAMPLE = {
    "company": {"siren": WATCHED_SIREN, "name": "Exemple Industries SAS"},
    "watched_since": "2026-03-02T10:20:00+01:00",
    "has_open_exposure": False,
}


# --- operations ------------------------------------------------------------------------------


def _documented(target: type, tags: list[str], **operations: Any) -> type:
    """A subclass of ``target`` carrying the schema of each operation the view serves.

    Operations for methods the view does not (yet) have are left out rather than warned about.
    """
    present = {method: decorator for method, decorator in operations.items() if hasattr(target, method)}
    documented = type(target.__name__, (target,), {"__doc__": target.__doc__, "__module__": target.__module__})
    documented = extend_schema(tags=tags)(documented)
    return extend_schema_view(**present)(documented)


def _score_request_serializer() -> type:
    from dossiers.api import ScoreRequestSerializer

    return ScoreRequestSerializer


SCORE_LIST_PARAMETERS = [
    OpenApiParameter("siren", str, description="Only this company's scores (9 digits)."),
    OpenApiParameter("reference", str, description="Only this individual's scores (the partner's reference)."),
    OpenApiParameter("status", str, enum=["pending", "scored", "failed"], description="Only scores in this status."),
    OpenApiParameter(
        "created_after", str, description="ISO 8601 date or datetime: only scores requested at or after it."
    ),
    OpenApiParameter("created_before", str, description="ISO 8601 date or datetime: only scores requested before it."),
    OpenApiParameter("cursor", str, description="The opaque cursor of a `next` or `previous` link."),
    OpenApiParameter(
        "page_size", {"type": "integer", "minimum": 1, "maximum": 200}, description="Scores per page (default 50)."
    ),
]


SCORE_LIST_SCHEMA = extend_schema(
    operation_id="score_list",
    summary="List scores",
    description=(
        "Scope `scores:read`. The partner's scores, newest first, each as `GET /scores/{id}` shows "
        "it; cursor pagination: follow `next` until it is null. A bad filter, cursor or page size "
        "is a 400 naming the parameter."
    ),
    parameters=[*SCORE_LIST_PARAMETERS, ACCEPT_LANGUAGE],
    responses={200: ScorePageDoc, **problems("/api/v1/scores", 400, *COMMON_ERRORS)},
)


class ScoreListCreateSchema(OpenApiViewExtension):
    target_class = "dossiers.api.ScoreListCreate"

    def view_replacement(self) -> type:
        return _documented(
            self.target,
            ["scores"],
            post=extend_schema(
                operation_id="score_create",
                summary="Request a score",
                description=(
                    "Scope `scores:write`. Give exactly one applicant: a `company` (B2B) or an `individual` "
                    "(B2C); `financial_statements` are for companies only. Unknown fields are refused. "
                    "Answers 202 with the score's `Location` to poll (honour `Retry-After`), or 200 with the "
                    "score when `Prefer: wait=N` was sent and it was ready in time. Safe to retry with an "
                    "`Idempotency-Key`. A sandbox client past its allowance gets 429 "
                    "`sandbox-allowance-exhausted`."
                ),
                request=_score_request_serializer(),
                parameters=[
                    IDEMPOTENCY_KEY,
                    PREFER,
                    ACCEPT_LANGUAGE,
                    LOCATION,
                    PREFERENCE_APPLIED,
                    IDEMPOTENT_REPLAYED,
                    retry_after(409, 429, 503),
                ],
                examples=SCORE_REQUEST_EXAMPLES,
                responses={
                    200: OpenApiResponse(
                        ScoreDoc,
                        description="`Prefer: wait=N` and the score was ready in time.",
                        examples=[OpenApiExample("scored", value=SCORE_EXAMPLE, status_codes=[200])],
                    ),
                    202: OpenApiResponse(
                        ScoreAcceptedDoc,
                        description="Accepted: poll `Location` until `status` leaves `pending`.",
                        examples=[OpenApiExample("accepted", value=SCORE_ACCEPTED_EXAMPLE, status_codes=[202])],
                    ),
                    **problems(
                        "/api/v1/scores",
                        *POST_ERRORS,
                        409,
                        422,
                        slugs=SCORE_CREATE_PROBLEMS,
                    ),
                },
            ),
            get=SCORE_LIST_SCHEMA,
        )


class ScoreDetailSchema(OpenApiViewExtension):
    target_class = "dossiers.api.ScoreDetail"

    def view_replacement(self) -> type:
        return _documented(
            self.target,
            ["scores"],
            get=extend_schema(
                operation_id="score_retrieve",
                summary="Read a score",
                description=(
                    "Scope `scores:read`. While `status` is `pending` the answer carries `Retry-After`: poll "
                    "again after it (or register a webhook). `failed` comes with `error`. Another partner's "
                    "id, or a malformed one, is a 404."
                ),
                parameters=[SCORE_ID_PARAMETER, ACCEPT_LANGUAGE, retry_after(200, 429, 503)],
                responses={
                    200: OpenApiResponse(
                        ScoreDoc, examples=[OpenApiExample("scored", value=SCORE_EXAMPLE, status_codes=[200])]
                    ),
                    **problems(f"/api/v1/scores/{SCORE_ID}", 404, *COMMON_ERRORS),
                },
            ),
        )


SCORE_COMPLETED_CALLBACK = OpenApiCallback(
    "score.completed",
    "{$request.body#/url}",
    extend_schema(
        summary="A score is ready",
        description=(
            "Sent to your endpoint when a score leaves `pending`. Verify `webhook-signature` "
            '(`v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">` keyed with the secret) '
            "and deduplicate on `webhook-id`. Only a 2xx counts as received; 410 disables the endpoint; "
            "other answers are retried for about three days, honouring `Retry-After` on 429/503."
        ),
        request=ScoreCompletedDoc,
        responses={200: OpenApiResponse(description="Received: any 2xx.")},
    ),
)


def _event_callback(
    name: str, summary: str, description: str, body: type, example: dict[str, Any] | None = None
) -> OpenApiCallback:
    """Another event type, delivered and signed like ``score.completed``."""
    critical = " Critical: sent at once, even to a `digest` endpoint." if name in CRITICAL_EVENT_TYPES else ""
    return OpenApiCallback(
        name,
        "{$request.body#/url}",
        extend_schema(
            summary=summary,
            description=description + critical + " Signed, retried and deduplicated like `score.completed`.",
            request=body,
            examples=[OpenApiExample(name, value=example)] if example else None,
            responses={200: OpenApiResponse(description="Received: any 2xx.")},
        ),
    )


def _company_example(event_type: str, kind: str, source: str, **fields: Any) -> dict[str, Any]:
    event = {**INSOLVENCY_EXAMPLE["data"]["event"], "kind": kind, "source": source, "details": {}, **fields}
    return {**INSOLVENCY_EXAMPLE, "type": event_type, "data": {**INSOLVENCY_EXAMPLE["data"], "event": event}}


MONITORING_CALLBACKS = [
    _event_callback(
        "score.dropped",
        "A monitored company's score dropped",
        "A company you hold open exposure on or watch was re-scored (the daily run, or at once after a negative "
        "event) and its score fell by `MONITORING_DROP_POINTS` (50 by default) or more. One event per company and "
        "re-score: a drop that also changes the band is a `score.dropped` only. Analysts get an alert too.",
        ScoreChangeEventDoc,
        SCORE_DROPPED_EXAMPLE,
    ),
    _event_callback(
        "score.band_changed",
        "A monitored company changed band",
        "Re-scored, its band changed (up or down) without a drop of `MONITORING_DROP_POINTS`.",
        ScoreChangeEventDoc,
        BAND_CHANGED_EXAMPLE,
    ),
    _event_callback(
        "score.changed",
        "A monitored company's score moved",
        "Re-scored, its score moved by `MONITORING_CHANGE_POINTS` (10 by default) or more, up or down, in the "
        "same band and without a drop. Not critical: a `digest` endpoint gets it in the daily digest.",
        ScoreChangeEventDoc,
        DIGEST_EXAMPLE["data"]["events"][0],
    ),
    _event_callback(
        "company.insolvency_proceeding",
        "An insolvency proceeding on a monitored company",
        "Found in BODACC, recorded by an analyst, or reported by you (a report of yours is sent to you only). "
        "The company is re-scored at once; a `score.*` event may follow.",
        CompanyEventDoc,
        INSOLVENCY_EXAMPLE,
    ),
    _event_callback(
        "company.payment_delay",
        "A payment delay on a monitored company",
        "Reported by you (sent to you only) or recorded by an analyst. The company is re-scored at once.",
        CompanyEventDoc,
        _company_example("company.payment_delay", "payment_delay", "partner", amount="1250.00", days_late=45, id=983),
    ),
    _event_callback(
        "company.sepa_rejection",
        "A SEPA direct debit of a monitored company was returned",
        "A `sepa_incident`, reported by you (sent to you only) or recorded by an analyst, with its reason code. "
        "The company is re-scored at once.",
        CompanyEventDoc,
        _company_example(
            "company.sepa_rejection", "sepa_incident", "partner", amount="89.90", reason_code="AM04", id=984
        ),
    ),
    _event_callback(
        "company.debt_collection",
        "Debt collection against a monitored company",
        "Reported by you (sent to you only) or recorded by an analyst. The company is re-scored at once.",
        CompanyEventDoc,
        _company_example("company.debt_collection", "debt_collection", "analyst", amount="4300.00", id=985),
    ),
    _event_callback(
        "company.accounts_published",
        "A monitored company published its accounts",
        "Found in BODACC (an annual accounts filing notice). News, not an alarm: no analyst alert, no re-score.",
        CompanyEventDoc,
        _company_example(
            "company.accounts_published",
            "accounts_published",
            "bodacc",
            id=986,
            details={
                "bodacc_id": "C202600398765",
                "deposit": "Comptes annuels et rapports",
                "closing_date": "2025-12-31",
                "published_on": "2026-04-14",
            },
        ),
    ),
    _event_callback(
        "digest.daily",
        "The day's digest",
        "Only to an endpoint whose `mode` is `digest`, once a day at `WEBHOOK_DIGEST_AT` (07:00 Paris time by "
        "default) when events were held: its non-critical events, each as it would have been sent alone. Not a "
        "type to subscribe to.",
        DigestEventDoc,
        DIGEST_EXAMPLE,
    ),
]


HUMAN_REVIEW_CALLBACKS = [
    _event_callback(
        "human_review.requested",
        "A human review was asked for",
        "Sent when a person asks (through `POST /scores/{id}/human-review`, or by phone or mail to an analyst) "
        "for a human to review the decision: it is not final until `human_review.completed`. No statement "
        "is sent.",
        HumanReviewRequestedEventDoc,
    ),
    _event_callback(
        "human_review.completed",
        "A human review was completed",
        "Sent when an analyst completes the review: the decision `confirmed`, or `changed` by an override "
        "(whose `decision.overridden` was sent first). The decision is final again. No note is sent.",
        HumanReviewCompletedEventDoc,
    ),
]

EVENT_CALLBACKS = [
    SCORE_COMPLETED_CALLBACK,
    _event_callback(
        "dossier.challenged",
        "An analyst challenged a score",
        "Sent when an analyst disputes the recommendation and corrects inputs. The re-score that follows is a "
        "`score.completed` with the next `score_version`.",
        DossierChallengedDoc,
    ),
    _event_callback(
        "decision.overridden",
        "A decision was overridden",
        "Sent when an override is final: at once when it lowers exposure, after a second senior analyst's "
        "approval when it raises it. An override awaiting approval is never sent.",
        DecisionOverriddenDoc,
    ),
    *HUMAN_REVIEW_CALLBACKS,
    *MONITORING_CALLBACKS,
    _event_callback(
        "outcome.recorded",
        "An outcome was recorded",
        "Repaid, defaulted or written off, from the back-office, a CSV import or the API.",
        OutcomeEventDoc,
    ),
    _event_callback(
        "outcome.corrected",
        "An outcome was corrected",
        "An analyst corrected an outcome, with a reason.",
        OutcomeEventDoc,
    ),
    _event_callback(
        "data_subject.erased",
        "A data subject's data were erased",
        "Sent to every partner that sent or received data about the person when their data are erased or "
        "anonymised (GDPR Art. 17): delete or anonymise your copy, keeping what you must by law. Carries your "
        "score ids only, never a name or a reference.",
        DataSubjectErasedEventDoc,
    ),
]


class WebhookEndpointListCreateSchema(OpenApiViewExtension):
    target_class = "alerts.api.EndpointListCreate"

    def view_replacement(self) -> type:
        from alerts.api import EndpointSerializer

        return _documented(
            self.target,
            ["webhooks"],
            get=extend_schema(
                operation_id="webhook_list",
                summary="List webhook endpoints",
                description="Scope `webhooks:manage`. The partner's endpoints (secrets are never shown again).",
                responses={
                    200: OpenApiResponse(
                        WebhookEndpointListDoc,
                        examples=[OpenApiExample("endpoints", value={"results": [WEBHOOK_EXAMPLE]})],
                    ),
                    **problems("/api/v1/webhooks", *COMMON_ERRORS),
                },
            ),
            post=extend_schema(
                operation_id="webhook_create",
                summary="Register a webhook endpoint",
                description=(
                    "Scope `webhooks:manage`. Deliveries follow Standard Webhooks 1.0 (`webhook-id`, "
                    "`webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of "
                    '"{id}.{timestamp}.{body}">`), signed with the `secret` this answer shows once. '
                    "`event_types` picks the types (none: all); `mode` `digest` bundles non-critical events into "
                    "one `digest.daily` a day (critical ones still leave at once). In production URLs must be "
                    "https, on an allowed port (443, 8443 by default), and resolve to public addresses only. "
                    "The callbacks below document every event's body."
                ),
                request=EndpointSerializer,
                callbacks=EVENT_CALLBACKS,
                examples=[
                    OpenApiExample(
                        "score.completed",
                        value={"url": "https://partner.example/hooks/riskoffice", "event_types": ["score.completed"]},
                        request_only=True,
                    ),
                    OpenApiExample(
                        "monitoring, daily digest",
                        value={
                            "url": "https://partner.example/hooks/riskoffice",
                            "event_types": [
                                "score.dropped",
                                "score.band_changed",
                                "score.changed",
                                "company.insolvency_proceeding",
                                "company.payment_delay",
                            ],
                            "mode": "digest",
                        },
                        request_only=True,
                    ),
                ],
                responses={
                    201: OpenApiResponse(
                        WebhookEndpointCreatedDoc,
                        examples=[
                            OpenApiExample(
                                "created",
                                value={**WEBHOOK_EXAMPLE, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
                                status_codes=[201],
                            )
                        ],
                    ),
                    **problems("/api/v1/webhooks", *POST_ERRORS),
                },
            ),
        )


WEBHOOK_ID_PARAMETER = OpenApiParameter(
    "id", int, OpenApiParameter.PATH, description="The endpoint's id; another partner's is a 404."
)
MESSAGE_ID_PARAMETER = OpenApiParameter(
    "message_id", str, OpenApiParameter.PATH, description="The delivery's `webhook-id` (`msg_…`)."
)
WEBHOOK_CONFLICT = (
    "webhook-conflict",
    "Not possible in this state",
    "The endpoint is disabled (resume it first), or the delivery is already pending or held for the digest.",
)
REDELIVER_PROBLEMS = {
    409: [WEBHOOK_CONFLICT, *HUMAN_REVIEW_PROBLEMS[409][1:]],
    422: HUMAN_REVIEW_PROBLEMS[422],
}
REDELIVER_REPLAYED = OpenApiParameter(
    "Idempotent-Replayed",
    str,
    OpenApiParameter.HEADER,
    enum=["true"],
    description="Present when this is the stored answer to an earlier request with the same Idempotency-Key.",
    response=[202],
)
DELIVERY_PAGE_PARAMETERS = [
    OpenApiParameter("status", str, enum=DELIVERY_STATUSES, description="Only deliveries in this status."),
    OpenApiParameter("event_type", str, enum=DELIVERY_EVENT_TYPES, description="Only deliveries of this event type."),
    OpenApiParameter("cursor", str, description="The opaque cursor of a `next` or `previous` link."),
    OpenApiParameter(
        "page_size", {"type": "integer", "minimum": 1, "maximum": 200}, description="Deliveries per page (default 50)."
    ),
]
ENDPOINT_PATH = "/api/v1/webhooks/12"


def _endpoint_action(operation_id: str, summary: str, description: str, path: str) -> Any:
    """Pause or resume: no body, the endpoint as it now is."""
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        description=description,
        parameters=[WEBHOOK_ID_PARAMETER],
        request=None,
        responses={
            200: OpenApiResponse(
                WebhookEndpointDoc, examples=[OpenApiExample("endpoint", value=WEBHOOK_EXAMPLE, status_codes=[200])]
            ),
            **problems(path, 400, 404, *COMMON_ERRORS),
        },
    )


class EndpointUpdateSerializerSchema(OpenApiSerializerExtension):
    """The PATCH body: what to change, at least one of the two."""

    target_class = "alerts.api.EndpointUpdateSerializer"

    def get_name(self, auto_schema: Any, direction: str) -> str:
        return "WebhookEndpointChange"

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["minProperties"] = 1
        return schema


class WebhookEndpointDetailSchema(OpenApiViewExtension):
    target_class = "alerts.api.EndpointDetail"

    def view_replacement(self) -> type:
        from alerts.api import EndpointUpdateSerializer

        return _documented(
            self.target,
            ["webhooks"],
            get=extend_schema(
                operation_id="webhook_retrieve",
                summary="Read a webhook endpoint",
                description="Scope `webhooks:manage`. Its subscription, state (paused, failing, disabled), rotation.",
                parameters=[WEBHOOK_ID_PARAMETER],
                responses={
                    200: OpenApiResponse(
                        WebhookEndpointDoc,
                        examples=[OpenApiExample("endpoint", value=WEBHOOK_EXAMPLE, status_codes=[200])],
                    ),
                    **problems(ENDPOINT_PATH, 404, *COMMON_ERRORS),
                },
            ),
            patch=extend_schema(
                operation_id="webhook_update",
                summary="Change a webhook endpoint's subscription",
                description=(
                    "Scope `webhooks:manage`. `event_types` (none: all) and/or `mode`. Back to `immediate`, the "
                    "events held for the digest are sent at once. The URL cannot change: register a new endpoint."
                ),
                parameters=[WEBHOOK_ID_PARAMETER],
                request=EndpointUpdateSerializer,
                examples=[OpenApiExample("daily digest", value={"mode": "digest"}, request_only=True)],
                responses={
                    200: OpenApiResponse(WebhookEndpointDoc, description="Changed (or already so)."),
                    **problems(ENDPOINT_PATH, *POST_ERRORS, 404),
                },
            ),
            delete=extend_schema(
                operation_id="webhook_delete",
                summary="Remove a webhook endpoint",
                description="Scope `webhooks:manage`. Its deliveries, sent or not, and their log go with it.",
                parameters=[WEBHOOK_ID_PARAMETER],
                responses={204: None, **problems(ENDPOINT_PATH, 404, *COMMON_ERRORS)},
            ),
        )


class WebhookRotateSecretSchema(OpenApiViewExtension):
    target_class = "alerts.api.EndpointRotateSecret"

    def view_replacement(self) -> type:
        return _documented(
            self.target,
            ["webhooks"],
            post=extend_schema(
                operation_id="webhook_rotate_secret",
                summary="Rotate a webhook endpoint's secret",
                description=(
                    "Scope `webhooks:manage`. No body. A new `secret`, shown this once. Until "
                    "`previous_secret_expires_at` (`WEBHOOK_SECRET_OVERLAP_HOURS`, 24 h by default) every delivery "
                    "carries two signatures, one per secret: switch your receiver over within that time. Rotating "
                    "again during the overlap drops the oldest secret (two sign at most). Not replayed by an "
                    "Idempotency-Key: the secret is kept nowhere in clear."
                ),
                parameters=[WEBHOOK_ID_PARAMETER],
                request=None,
                responses={
                    200: OpenApiResponse(
                        WebhookEndpointCreatedDoc,
                        description="Rotated: the endpoint with its new secret.",
                        examples=[
                            OpenApiExample(
                                "rotated",
                                value={
                                    **WEBHOOK_EXAMPLE,
                                    "previous_secret_expires_at": "2026-03-10T09:30:00+01:00",
                                    "secret": "whsec_Qm9yZGVhdXgsIGxlIDkgbWFycyAyMDI2IGF1IG1hdGlu",
                                },
                                status_codes=[200],
                            )
                        ],
                    ),
                    **problems(f"{ENDPOINT_PATH}/rotate-secret", 400, 404, *COMMON_ERRORS),
                },
            ),
        )


class WebhookPauseSchema(OpenApiViewExtension):
    target_class = "alerts.api.EndpointPause"

    def view_replacement(self) -> type:
        return _documented(
            self.target,
            ["webhooks"],
            post=_endpoint_action(
                "webhook_pause",
                "Pause a webhook endpoint",
                "Scope `webhooks:manage`. No body. Nothing is sent while paused; events still accumulate as pending "
                "deliveries (held ones still go to the digest) and leave when it is resumed. Pausing twice is "
                "harmless.",
                f"{ENDPOINT_PATH}/pause",
            ),
        )


class WebhookResumeSchema(OpenApiViewExtension):
    target_class = "alerts.api.EndpointResume"

    def view_replacement(self) -> type:
        return _documented(
            self.target,
            ["webhooks"],
            post=_endpoint_action(
                "webhook_resume",
                "Resume a webhook endpoint",
                "Scope `webhooks:manage`. No body. Ends a pause, and enables again an endpoint that was disabled "
                "(a 410, or failing for `WEBHOOK_DISABLE_AFTER_DAYS` days): what waited is sent now. Deliveries "
                "cancelled when it was disabled stay cancelled: ask for the ones you need again (redeliver).",
                f"{ENDPOINT_PATH}/resume",
            ),
        )


class WebhookDeliveryListSchema(OpenApiViewExtension):
    target_class = "alerts.api.DeliveryList"

    def view_replacement(self) -> type:
        return _documented(
            self.target,
            ["webhooks"],
            get=extend_schema(
                operation_id="webhook_delivery_list",
                summary="The endpoint's delivery log",
                description=(
                    "Scope `webhooks:manage`. Every event sent (or to send) to the endpoint, newest first, with "
                    "its status, attempts and last answer; filter by `status` and `event_type`; cursor pagination "
                    "as `GET /scores`. An unknown or repeated parameter is a 400."
                ),
                parameters=[WEBHOOK_ID_PARAMETER, *DELIVERY_PAGE_PARAMETERS],
                responses={
                    200: OpenApiResponse(
                        WebhookDeliveryPageDoc,
                        examples=[
                            OpenApiExample(
                                "deliveries",
                                value={"results": [DELIVERY_EXAMPLE], "next": None, "previous": None},
                                status_codes=[200],
                            )
                        ],
                    ),
                    **problems(f"{ENDPOINT_PATH}/deliveries", 400, 404, *COMMON_ERRORS),
                },
            ),
        )


class WebhookDeliveryDetailSchema(OpenApiViewExtension):
    target_class = "alerts.api.DeliveryDetail"

    def view_replacement(self) -> type:
        return _documented(
            self.target,
            ["webhooks"],
            get=extend_schema(
                operation_id="webhook_delivery_retrieve",
                summary="One delivery, with its attempts",
                description=(
                    "Scope `webhooks:manage`. The body sent, and each attempt: when, to which address, the "
                    "status code, the latency, an excerpt of the answer, the error."
                ),
                parameters=[WEBHOOK_ID_PARAMETER, MESSAGE_ID_PARAMETER],
                responses={
                    200: OpenApiResponse(
                        WebhookDeliveryDetailDoc,
                        examples=[OpenApiExample("delivery", value=DELIVERY_DETAIL_EXAMPLE, status_codes=[200])],
                    ),
                    **problems(f"{ENDPOINT_PATH}/deliveries/{MESSAGE_ID}", 404, *COMMON_ERRORS),
                },
            ),
        )


class WebhookRedeliverSchema(OpenApiViewExtension):
    target_class = "alerts.api.DeliveryRedeliver"

    def view_replacement(self) -> type:
        path = f"{ENDPOINT_PATH}/deliveries/{MESSAGE_ID}/redeliver"
        return _documented(
            self.target,
            ["webhooks"],
            post=extend_schema(
                operation_id="webhook_redeliver",
                summary="Send a delivery again",
                description=(
                    "Scope `webhooks:manage`. No body. A delivered, failed or cancelled delivery is sent again "
                    "now with the same `webhook-id` (deduplicate on it), and its retry schedule starts afresh; "
                    "the attempt appears in its log. 409 `webhook-conflict` when the endpoint is disabled "
                    "(resume it first) or the delivery is already pending or held for the digest. Safe to retry "
                    "with an `Idempotency-Key`."
                ),
                parameters=[
                    WEBHOOK_ID_PARAMETER,
                    MESSAGE_ID_PARAMETER,
                    IDEMPOTENCY_KEY,
                    REDELIVER_REPLAYED,
                    retry_after(409, 429, 503),
                ],
                request=None,
                responses={
                    202: OpenApiResponse(
                        WebhookDeliveryDoc,
                        description="Pending again: sent within seconds.",
                        examples=[
                            OpenApiExample(
                                "pending",
                                value={
                                    **DELIVERY_EXAMPLE,
                                    "status": "pending",
                                    "attempts": 0,
                                    "next_attempt_at": "2026-03-05T11:00:00+01:00",
                                    "delivered_at": None,
                                },
                                status_codes=[202],
                            )
                        ],
                    ),
                    **problems(path, 400, 404, 409, 422, *COMMON_ERRORS, slugs=REDELIVER_PROBLEMS),
                },
            ),
        )


# --- /api/v1/monitoring: the watch list --------------------------------------------------------------

WATCH_PROBLEMS = {
    422: [
        (
            "company-not-scored",
            "Company not scored",
            f"You have not scored SIREN {WATCHED_SIREN}: request a score for it (POST /api/v1/scores) first.",
        )
    ]
}
WATCH_PAGE_PARAMETERS = [
    OpenApiParameter("cursor", str, description="The opaque cursor of a `next` or `previous` link."),
    OpenApiParameter(
        "page_size", {"type": "integer", "minimum": 1, "maximum": 200}, description="Watches per page (default 50)."
    ),
]


class WatchListCreateSchema(OpenApiViewExtension):
    target_class = "alerts.monitoring_api.WatchListCreate"

    def view_replacement(self) -> type:
        from alerts.monitoring_api import WatchRequestSerializer

        return _documented(
            self.target,
            ["monitoring"],
            get=extend_schema(
                operation_id="monitoring_list",
                summary="List watched companies",
                description=(
                    "Scope `monitoring:manage`. The companies you asked to watch, newest first, each saying "
                    "whether you also hold open exposure on it; cursor pagination as `GET /scores`. Companies "
                    "you hold open exposure on are monitored without being listed here."
                ),
                parameters=WATCH_PAGE_PARAMETERS,
                responses={
                    200: OpenApiResponse(
                        WatchPageDoc,
                        examples=[
                            OpenApiExample(
                                "watched",
                                value={"results": [WATCH_EXAMPLE], "next": None, "previous": None},
                                status_codes=[200],
                            )
                        ],
                    ),
                    **problems("/api/v1/monitoring", 400, *COMMON_ERRORS),
                },
            ),
            post=extend_schema(
                operation_id="monitoring_watch",
                summary="Watch a company",
                description=(
                    "Scope `monitoring:manage`. Monitor a company you have scored (one of your dossiers is on its "
                    "SIREN), as if you held exposure on it: it is re-scored daily, and its score changes and "
                    "negative events are sent to your webhooks. 201, or 200 when you watch it already. A company "
                    "you never scored is a 422 `company-not-scored` (a watch never reveals another partner's "
                    "applicant)."
                ),
                request=WatchRequestSerializer,
                examples=[OpenApiExample("a company", value={"company": {"siren": WATCHED_SIREN}}, request_only=True)],
                responses={
                    201: OpenApiResponse(
                        WatchDoc,
                        description="Watched from now on.",
                        examples=[OpenApiExample("watched", value=WATCH_EXAMPLE, status_codes=[201])],
                    ),
                    200: OpenApiResponse(WatchDoc, description="Already watched."),
                    **problems("/api/v1/monitoring", *POST_ERRORS, 422, slugs=WATCH_PROBLEMS),
                },
            ),
        )


class WatchDetailSchema(OpenApiViewExtension):
    target_class = "alerts.monitoring_api.WatchDetail"

    def view_replacement(self) -> type:
        return _documented(
            self.target,
            ["monitoring"],
            delete=extend_schema(
                operation_id="monitoring_unwatch",
                summary="Stop watching a company",
                description=(
                    "Scope `monitoring:manage`. 204; 404 when you do not watch it; 400 for a malformed SIREN. "
                    "Open exposure on the company keeps it monitored."
                ),
                parameters=[
                    OpenApiParameter("siren", str, OpenApiParameter.PATH, description="The company's SIREN (9 digits).")
                ],
                responses={204: None, **problems(f"/api/v1/monitoring/{WATCHED_SIREN}", 400, 404, *COMMON_ERRORS)},
            ),
        )


class ScoreOutcomeSchema(OpenApiViewExtension):
    target_class = "dossiers.api.ScoreOutcome"

    def view_replacement(self) -> type:
        from dossiers.api import OutcomeRequestSerializer

        path = f"/api/v1/scores/{SCORE_ID}/outcome"
        return _documented(
            self.target,
            ["scores"],
            post=extend_schema(
                operation_id="score_outcome_record",
                summary="Report what became of the credit",
                description=(
                    "Scope `outcomes:write`. Once per scored dossier: repaid, defaulted or written off "
                    "(`written_off_amount` required), on a date neither in the future nor before the score was "
                    "requested. A defaulted credit may later be reported written off (200, the outcome "
                    "updated); any other second report is a 409 `outcome-already-recorded`. Outcomes train "
                    "the next models."
                ),
                parameters=[SCORE_ID_PARAMETER],
                request=OutcomeRequestSerializer,
                examples=OUTCOME_REQUEST_EXAMPLES,
                responses={
                    201: OpenApiResponse(
                        RecordedOutcomeDoc,
                        description="Recorded.",
                        examples=[OpenApiExample("recorded", value=OUTCOME_EXAMPLE, status_codes=[201])],
                    ),
                    200: OpenApiResponse(
                        RecordedOutcomeDoc, description="A defaulted credit, now written off: the outcome updated."
                    ),
                    **problems(path, *POST_ERRORS, 404, 409, slugs=OUTCOME_PROBLEMS),
                },
            ),
        )


class ScoreHumanReviewSchema(OpenApiViewExtension):
    target_class = "riskoffice.subjects.api.ScoreHumanReview"

    def view_replacement(self) -> type:
        from riskoffice.subjects.api import HumanReviewRequestSerializer

        path = f"/api/v1/scores/{SCORE_ID}/human-review"
        return _documented(
            self.target,
            ["scores"],
            post=extend_schema(
                operation_id="score_human_review_request",
                summary="Ask for a human to review the decision",
                description=(
                    "Scope `scores:write`. GDPR Art. 22(3): the person the score is about asks for a human to "
                    "review the automated decision, and may say what they contest (`statement`, optional, at "
                    "most 4000 characters; shown to the analyst, never sent back). 202: the request, answered "
                    "within one month (`due_at`); until then `GET /scores/{id}` shows `decision_final: false`. "
                    "A request while one is open joins it: 200 with the same request. Only a scored dossier has "
                    "a decision to review (409 `dossier-not-scored`). Safe to retry with an `Idempotency-Key`. "
                    "Your webhooks hear `human_review.requested`, then `human_review.completed`."
                ),
                parameters=[SCORE_ID_PARAMETER, IDEMPOTENCY_KEY, LOCATION, IDEMPOTENT_REPLAYED, retry_after(409)],
                request=HumanReviewRequestSerializer,
                examples=[
                    OpenApiExample(
                        "with a statement",
                        value={"statement": "The turnover used is from 2022; our 2024 accounts show 1.2 M€."},
                        request_only=True,
                    )
                ],
                responses={
                    202: OpenApiResponse(
                        HumanReviewAnswerDoc,
                        description="Requested: a human answers by `due_at`.",
                        examples=[OpenApiExample("requested", value=HUMAN_REVIEW_EXAMPLE, status_codes=[202])],
                    ),
                    200: OpenApiResponse(
                        HumanReviewAnswerDoc, description="A review was already open: this request joins it."
                    ),
                    **problems(path, *POST_ERRORS, 404, 409, 422, slugs=HUMAN_REVIEW_PROBLEMS),
                },
            ),
        )


class EventCreateSchema(OpenApiViewExtension):
    target_class = "alerts.api.EventCreate"

    def view_replacement(self) -> type:
        from alerts.api import EventRequestSerializer

        return _documented(
            self.target,
            ["events"],
            post=extend_schema(
                operation_id="event_report",
                summary="Report a negative event",
                description=(
                    "Scope `events:write`. About a `company` (by SIREN) or one of your `individual`s (by "
                    "reference): exactly one. `days_late` is for a `payment_delay`, `reason_code` (a SEPA "
                    "return reason such as AM04 or MD06) for a `sepa_incident`. Your `event_id` makes the "
                    "report safe to retry: the same id with the same content answers 200 with the stored "
                    "event; with other content, 409 `event-id-reused`. An event you report counts in your "
                    "own dossiers' scores only."
                ),
                request=EventRequestSerializer,
                examples=EVENT_REQUEST_EXAMPLES,
                responses={
                    201: OpenApiResponse(
                        NegativeEventDoc,
                        description="Recorded.",
                        examples=[OpenApiExample("recorded", value=EVENT_EXAMPLE, status_codes=[201])],
                    ),
                    200: OpenApiResponse(NegativeEventDoc, description="Already reported with this content."),
                    **problems("/api/v1/events", *POST_ERRORS, 409, slugs=EVENT_PROBLEMS),
                },
            ),
        )


def postprocess_schema(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """The API's description (with /o/token/, which is not a DRF view), its tags, and every operation secured."""
    result["info"]["description"] = DESCRIPTION
    for item in result["paths"].values():
        for operation in item.values():
            for status in ("429", "503"):
                if status in operation["responses"]:
                    headers = operation["responses"][status].setdefault("headers", {})
                    headers.setdefault("Retry-After", RETRY_AFTER_HEADER)
    result["tags"] = [
        {"name": "scores", "description": "Request and read scores, report outcomes."},
        {"name": "events", "description": "Report negative events on a company or an individual."},
        {
            "name": "webhooks",
            "description": "Be told of scores, score changes and negative events: endpoints, secret rotation, "
            "pause and resume, the delivery log and redelivery (`docs/webhooks.md`).",
        },
        {
            "name": "monitoring",
            "description": "Watch companies you have scored: re-scored daily, their changes sent to your webhooks "
            "(`docs/monitoring.md`).",
        },
    ]
    return result


# --- the docs pages ----------------------------------------------------------------------------


class _AnonymousReader:
    """The docs pages are public: their reader is Django's anonymous user, as our templates' context expects.

    (The API's DRF settings leave an unauthenticated request's user as None, which the back-office's
    context processors cannot read.)
    """

    authentication_classes: list[type] = []

    def perform_authentication(self, request: Any) -> None:
        request.user, request.auth = AnonymousUser(), None  # both set: reading auth would authenticate again


class SwaggerView(_AnonymousReader, SpectacularSwaggerView):
    template_name = "api/swagger_ui.html"  # drf-spectacular's, its inline style and script with the CSP nonce


# Redoc's bundle writes its styles into <style> elements it creates (styled-components) and runs its search in a
# worker from a blob: URL. On this public page only (no session, no personal data), styles may be inline and the
# worker may come from blob:; scripts stay 'self' only, and nothing may be fetched from elsewhere.
REDOC_CSP = {"style-src": ["'self'", "'unsafe-inline'"], "worker-src": ["'self'", "blob:"]}


@method_decorator(csp_replace(REDOC_CSP), name="dispatch")
class RedocView(_AnonymousReader, SpectacularRedocView):
    template_name = "api/redoc.html"  # drf-spectacular's, without its Google Fonts links
