"""Partner API for scores: POST /api/v1/scores, GET /api/v1/scores/{id}."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.validators import RegexValidator
from django.urls import reverse
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from riskoffice.api import api_client_of
from riskoffice.audit import Actor
from riskoffice.scoping import get_or_404
from scoring.statements import statement_errors

from . import selectors, services
from .identifiers import normalise_vat, siren_error, vat_error
from .models import Dossier
from .representation import score_representation


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


class ScoreListCreate(APIView):
    required_scopes = ["scores:write"]

    def post(self, request: Request) -> Response:
        serializer = ScoreRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        client = api_client_of(request)
        if "individual" in data:
            dossier = services.dossier_create_individual(
                partner=client.partner,
                reference=data["individual"]["reference"],
                requested_amount=data["requested_amount"],
                bank_tokens=data["bank_data"],
                actor=Actor(client=client),
            )
        else:
            dossier = services.dossier_create(
                partner=client.partner,
                siren=data["company"]["siren"],
                requested_amount=data["requested_amount"],
                bank_tokens=data["bank_data"],
                actor=Actor(client=client),
                statements=data.get("financial_statements") or [],
            )
        location = request.build_absolute_uri(reverse("api:score-detail", args=[dossier.pk]))
        body = {"id": str(dossier.pk), "status": dossier.status, "links": {"self": location}}
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})


class ScoreDetail(APIView):
    required_scopes = ["scores:read"]

    def get(self, request: Request, pk: str) -> Response:
        dossier = get_or_404(selectors.dossiers_for_client(api_client_of(request)), pk)
        response = Response(score_representation(dossier, selectors.latest_score(dossier), lang=_language(request)))
        if dossier.status == Dossier.Status.PENDING:
            response["Retry-After"] = "1"
        return response
