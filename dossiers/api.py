"""Partner API for scores: POST /api/v1/scores, GET /api/v1/scores/{id}."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from riskoffice.api import api_client_of, raise_service_error
from riskoffice.audit import Actor
from riskoffice.idempotency import idempotently
from riskoffice.scoping import get_or_404
from scoring.statements import statement_errors

from . import selectors, services
from .batch import scoring_admission_check
from .identifiers import normalise_vat, siren_error, vat_error
from .models import Dossier, Individual, Outcome
from .representation import outcome_representation, score_representation


class StrictCharField(serializers.CharField):
    """A string and nothing else: a JSON number would silently lose a SIREN's leading zeros."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictDecimalField(serializers.DecimalField):
    """A JSON number or a numeric string; booleans are not amounts."""

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class RejectUnknownFieldsMixin:
    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class CompanySerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    siren = StrictCharField(max_length=20, help_text="9-digit SIREN (spaces allowed).")
    vat = StrictCharField(max_length=20, required=False, help_text="French VAT number, checked against the SIREN.")

    def validate_siren(self, value: str) -> str:
        siren = "".join(value.split())
        error = siren_error(siren)
        if error:
            raise serializers.ValidationError(error)
        return siren

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        vat = attrs.get("vat")
        if vat:
            error = vat_error(vat, attrs["siren"])
            if error:
                raise serializers.ValidationError({"vat": error})
            attrs["vat"] = normalise_vat(vat)
        return attrs


class IndividualSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    # Only the partner's internal reference: we store nothing that identifies a person directly.
    reference = StrictCharField(
        max_length=100,
        trim_whitespace=False,
        validators=[
            RegexValidator(
                r"\A[A-Za-z0-9._:-]+\Z", "Use letters, digits and . _ : - only (no spaces), 1 to 100 characters."
            )
        ],
        help_text="The partner's internal reference for the person (no name, no national id).",
    )


def _figure(**kwargs: Any) -> StrictDecimalField:
    return StrictDecimalField(max_digits=16, decimal_places=2, required=False, allow_null=True, **kwargs)


class FinancialStatementSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """One fiscal year's balance-sheet and income items, in euros (the registry publishes only two of them)."""

    fiscal_year_end = serializers.DateField(help_text="Last day of the fiscal year, YYYY-MM-DD.")
    revenue = _figure(min_value=Decimal("0"))
    net_income = _figure()
    ebitda = _figure()
    equity = _figure()
    total_assets = _figure(min_value=Decimal("0"))
    current_assets = _figure()
    current_liabilities = _figure()
    financial_debt = _figure()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors = statement_errors(attrs)
        if errors:
            raise serializers.ValidationError(
                {
                    "non_field_errors" if name == NON_FIELD_ERRORS else name: [message]
                    for name, message in errors.items()
                }
            )
        return attrs


class ScoreRequestSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    APPLICANTS = ("company", "individual")

    company = CompanySerializer(required=False, help_text="A company (B2B); or give an individual.")
    individual = IndividualSerializer(required=False, help_text="An individual (B2C); or give a company.")
    bank_data = serializers.ListField(
        child=StrictCharField(max_length=500, allow_blank=False),
        required=False,
        default=list,
        max_length=10,
        help_text="Open-banking aggregator tokens; stored encrypted.",
    )
    requested_amount = StrictDecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("1"),
        max_value=Decimal("100000000"),
        help_text="Amount requested, in euros.",
    )
    financial_statements = FinancialStatementSerializer(
        many=True,
        required=False,
        max_length=5,
        help_text="Optional: the applicant's latest statements; the latest fiscal year is scored.",
    )

    def to_internal_value(self, data: Any) -> Any:
        # Checked beside the field errors, not after them: a body naming no applicant hears so at once.
        applicant_errors = self._applicant_errors(data) if isinstance(data, dict) else {}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if applicant_errors and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**applicant_errors, **exc.detail}) from None
            raise
        if applicant_errors:
            raise serializers.ValidationError(applicant_errors)
        return value

    def _applicant_errors(self, data: dict[str, Any]) -> dict[str, list[str]]:
        given = [name for name in self.APPLICANTS if name in data]
        if len(given) == 1:
            if given == ["individual"] and data.get("financial_statements"):
                return {"financial_statements": ["Financial statements belong to a company, not an individual."]}
            return {}
        message = (
            "Give either a company or an individual, not both."
            if given
            else "Give the applicant: a company (B2B) or an individual (B2C)."
        )
        return {name: [message] for name in self.APPLICANTS}


def _language(request: Request) -> str:
    header = request.headers.get("Accept-Language", "")
    return "en" if header.lower().startswith("en") else "fr"


def preferred_wait(request: Request) -> int | None:
    """Seconds asked for by ``Prefer: wait=N`` (RFC 7240), at most PREFER_WAIT_MAX_SECONDS; None if not asked.

    The header may hold several preferences (``respond-async, wait=5``); only the first
    ``wait`` counts, and one that is not a whole number of seconds is ignored.
    """
    for preference in request.headers.get("Prefer", "").split(","):
        name, _, value = preference.split(";", 1)[0].partition("=")
        if name.strip().lower() != "wait":
            continue
        seconds = re.fullmatch(r'\s*("?)([0-9]{1,9})\1\s*', value)  # delta-seconds, or the same quoted
        if seconds is None:
            return None
        return min(int(seconds.group(2)), settings.PREFER_WAIT_MAX_SECONDS)
    return None


def _score_when_ready(request: Request, accepted: Response, wait: int) -> Response:
    """The score itself (200), scored here and now; the 202 as it was if it could not be scored yet.

    The request that waits does the work itself (the dossier was created claimed by it): no hop
    through the broker, nothing to poll. A dossier whose scoring failed here is handed to the
    workers and the answer is the 202: the partner polls, or hears from the webhook.
    """
    stored = services.dossier_score_here(dossier_id=accepted.data["id"])
    if stored is not None:
        dossier, score = stored  # as stored: no need to read them back
    else:
        dossier = get_or_404(selectors.dossiers_for_client(api_client_of(request)), accepted.data["id"])
        if dossier.status == Dossier.Status.PENDING:
            return accepted
        score = selectors.latest_score(dossier)
    body = score_representation(dossier, score, lang=_language(request))
    headers = {"Location": accepted["Location"], "Preference-Applied": f"wait={wait}"}
    return Response(body, status=status.HTTP_200_OK, headers=headers)


def _score_request_accept(request: Request, *, score_here: bool = False) -> Response:
    """Validate the request and create its dossier: 202 with the dossier's address.

    ``score_here``: the request will score the dossier itself after commit (``Prefer: wait``).
    """
    serializer = ScoreRequestSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    scoring_admission_check()
    client = api_client_of(request)
    # The services charge a sandbox client's allowance in the creating transaction: their 429
    # rolls the request back and releases its Idempotency-Key (riskoffice/idempotency.py).
    if "individual" in data:
        dossier = services.dossier_create_individual(
            partner=client.partner,
            reference=data["individual"]["reference"],
            requested_amount=data["requested_amount"],
            bank_tokens=data["bank_data"],
            actor=Actor(client=client),
            score_here=score_here,
        )
    else:
        dossier = services.dossier_create(
            partner=client.partner,
            siren=data["company"]["siren"],
            requested_amount=data["requested_amount"],
            bank_tokens=data["bank_data"],
            actor=Actor(client=client),
            statements=data.get("financial_statements") or [],
            score_here=score_here,
        )
    location = request.build_absolute_uri(reverse("api:score-detail", args=[dossier.pk]))
    body = {"id": str(dossier.pk), "status": dossier.status, "links": {"self": location}}
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})


class ScoreListCreate(APIView):
    required_scopes = ["scores:write"]
    required_scopes_by_method = {"GET": ["scores:read"], "POST": ["scores:write"]}

    def get(self, request: Request) -> Response:
        """The partner's dossiers, newest first, each as GET /scores/{id} shows it; filtered, by cursor pages."""
        dossiers = score_list_queryset(api_client_of(request), list_query_filters(request, ScoreListFilterSerializer))
        paginator = ScoreCursorPagination()
        page = paginator.paginate_queryset(dossiers, request, view=self)
        lang = _language(request)
        return paginator.get_paginated_response(
            [score_representation(dossier, selectors.latest_score(dossier), lang=lang) for dossier in page]
        )

    def post(self, request: Request) -> Response:
        """202 at once; with ``Prefer: wait=N``, scored in this request: 200 and the score; retried safely by key."""
        wait = preferred_wait(request)
        follow_up = (lambda accepted: _score_when_ready(request, accepted, wait)) if wait else None
        work = lambda: _score_request_accept(request, score_here=bool(wait))  # noqa: E731
        return idempotently(self, request, work=work, follow_up=follow_up)


class ScoreDetail(APIView):
    required_scopes = ["scores:read"]

    def get(self, request: Request, pk: str) -> Response:
        dossier = get_or_404(selectors.dossiers_for_client(api_client_of(request)), pk)
        response = Response(score_representation(dossier, selectors.latest_score(dossier), lang=_language(request)))
        if dossier.status == Dossier.Status.PENDING:
            response["Retry-After"] = "1"
        return response


# --- GET /api/v1/scores: the partner's dossiers, filtered, a cursor page at a time -------------------

DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class StrictDateField(serializers.DateField):
    """A calendar date written YYYY-MM-DD, and nothing else (no number, no week date, no time)."""

    default_error_messages = {"invalid": "Give a date as YYYY-MM-DD."}

    def to_internal_value(self, value: Any) -> date:
        if not isinstance(value, str) or not DATE_PATTERN.fullmatch(value):
            self.fail("invalid")
        return super().to_internal_value(value)


class InstantField(serializers.Field):
    """An ISO 8601 date (midnight, Paris time) or a datetime with its UTC offset, as an aware datetime."""

    default_error_messages = {
        "invalid": "Give an ISO 8601 date (YYYY-MM-DD) or date-time with its offset (2025-01-31T09:30:00Z; "
        "in a query string, write + as %2B).",
        "naive": "Give the time's UTC offset, e.g. 2025-01-31T09:30:00Z or 2025-01-31T10:30:00%2B01:00.",
    }

    def to_internal_value(self, value: Any) -> datetime:
        if not isinstance(value, str):
            self.fail("invalid")
        try:
            if DATE_PATTERN.fullmatch(value):
                return timezone.make_aware(datetime.combine(date.fromisoformat(value), datetime.min.time()))
            parsed = parse_datetime(value)
        except ValueError:
            self.fail("invalid")
        if parsed is None:
            self.fail("invalid")
        if timezone.is_naive(parsed):
            self.fail("naive")
        return parsed

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


class ScoreListFilterSerializer(serializers.Serializer):
    siren = StrictCharField(required=False, max_length=20, help_text="The company's SIREN.")
    reference = StrictCharField(
        required=False, max_length=100, trim_whitespace=False, help_text="Your reference for the individual."
    )
    status = serializers.ChoiceField(choices=Dossier.Status.choices, required=False)
    created_after = InstantField(required=False, help_text="Created at or after this date or instant.")
    created_before = InstantField(required=False, help_text="Created strictly before this date or instant.")

    def validate_siren(self, value: str) -> str:
        siren = "".join(value.split())
        error = siren_error(siren)
        if error:
            raise serializers.ValidationError(error)
        return siren

    def validate_reference(self, value: str) -> str:
        individual = IndividualSerializer(data={"reference": value})  # the same rules as when scoring
        if not individual.is_valid():
            raise serializers.ValidationError(individual.errors["reference"])
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        after, before = attrs.get("created_after"), attrs.get("created_before")
        if after is not None and before is not None and after >= before:
            raise serializers.ValidationError({"created_before": "Must be later than created_after."})
        return attrs


class ScoreCursorPagination(CursorPagination):
    """Newest first; the id breaks ties between dossiers created in the same microsecond."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    PARAMETERS = ("cursor", "page_size")

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= self.max_page_size:
            raise serializers.ValidationError({"page_size": [f"An integer from 1 to {self.max_page_size}."]})
        return int(raw)

    def decode_cursor(self, request: Request) -> Cursor | None:
        message = "Not a cursor this API gave: follow the next or previous link as it is."
        try:
            cursor = super().decode_cursor(request)
            # The position is the created_at of a page's edge; a forged one must not reach the query.
            if cursor is not None and cursor.position is not None and parse_datetime(cursor.position) is None:
                raise NotFound
        except (NotFound, ValueError):
            raise serializers.ValidationError({"cursor": [message]}) from None
        return cursor

    def get_paginated_response(self, data: list[dict[str, Any]]) -> Response:
        return Response({"results": data, "next": self.get_next_link(), "previous": self.get_previous_link()})


def list_query_filters(request: Request, filters_class: type[serializers.Serializer]) -> dict[str, Any]:
    """A list's validated query filters; an unknown or repeated parameter is refused rather than ignored.

    Every cursor-paged list of the API reads its query string through here: ``filters_class`` declares the
    filters, the pagination's own parameters are known too.
    """
    params = request.query_params
    known = set(filters_class().fields) | set(ScoreCursorPagination.PARAMETERS)
    errors = {name: ["Unknown parameter."] for name in params if name not in known}
    errors.update(
        {name: ["Give this parameter once."] for name in params if name in known and len(params.getlist(name)) > 1}
    )
    if errors:
        raise serializers.ValidationError(errors)
    filters = filters_class(
        data={name: params[name] for name in params if name not in ScoreCursorPagination.PARAMETERS}
    )
    filters.is_valid(raise_exception=True)
    return filters.validated_data


def score_list_queryset(client: Any, filters: dict[str, Any]) -> QuerySet[Dossier]:
    dossiers = selectors.dossiers_for_client(client).select_related("outcome")
    lookups = {
        "siren": "company__siren",
        "reference": "individual__in",
        "status": "status",
        "created_after": "created_at__gte",
        "created_before": "created_at__lt",
    }
    if "reference" in filters:
        # Encrypted, so found by its keyed digest (dossiers.models.IndividualQuerySet); a partner's individuals are
        # its own, so the unique (partner, reference_digest) index serves the look-up.
        own = Individual.objects.filter(partner_id=client.partner_id)
        filters = {**filters, "reference": own.matching_reference(filters["reference"])}
    return dossiers.filter(**{lookups[name]: value for name, value in filters.items()})


# --- POST /api/v1/scores/{id}/outcome: what became of the credit -----------------------------------------


def _amount(help_text: str) -> StrictDecimalField:
    return StrictDecimalField(
        max_digits=14, decimal_places=2, min_value=Decimal("0"), required=False, allow_null=True, help_text=help_text
    )


class OutcomeRequestSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    status = serializers.ChoiceField(
        choices=Outcome.Status.choices,
        help_text="repaid, defaulted, or written_off (a default may be written off later).",
    )
    occurred_on = StrictDateField(help_text="When it happened, YYYY-MM-DD: not in the future, not before the request.")
    granted_amount = _amount("The amount granted, in euros.")
    outstanding_amount = _amount("The amount still owed at the default, in euros.")
    written_off_amount = _amount("The amount written off, in euros: required for written_off.")


class ScoreOutcome(APIView):
    """Report what became of a scored credit; the same service as the analysts' outcome form."""

    required_scopes = ["outcomes:write"]

    def post(self, request: Request, pk: str) -> Response:
        client = api_client_of(request)
        dossier = get_or_404(selectors.dossiers_for_client(client), pk)  # another partner's: 404 before anything
        serializer = OutcomeRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            outcome, created = services.outcome_record(
                dossier=dossier,
                status=data["status"],
                occurred_on=data["occurred_on"],
                amounts={name: data.get(name) for name in services.OUTCOME_AMOUNTS},
                actor=Actor(client=client),
            )
        except DjangoValidationError as exc:  # 409 when the outcome is recorded or the dossier not scored
            raise_service_error(exc)
        score_url = request.build_absolute_uri(reverse("api:score-detail", args=[dossier.pk]))
        body = {"id": str(dossier.pk), **outcome_representation(outcome), "links": {"score": score_url}}
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
