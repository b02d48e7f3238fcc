"""Model versions, decision policies, collected features and scores."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Segment(models.TextChoices):
    """Who is scored: each segment has its own features, model, policy and score scale."""

    B2B = "b2b", "Company (B2B)"
    B2C = "b2c", "Individual (B2C)"


class Decision(models.TextChoices):
    """What the policy recommends, and what a dossier's decision in force can be."""

    ACCEPT = "accept", "Accept"
    GUARANTEE = "guarantee", "Ask for a guarantee"
    REFUSE = "refuse", "Refuse"


# Outcomes (dossiers.Outcome.status) a model learns as a default: a write-off follows a default.
DEFAULT_OUTCOMES = ("defaulted", "written_off")


class ModelVersion(models.Model):
    """A trained XGBoost model, stored in XGBoost's own UBJ format in the database.

    Kept in the database (not on a disk) so that every worker on every machine loads
    the same bytes; never pickled.
    """

    class Status(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        CHAMPION = "champion", "Champion"
        RETIRED = "retired", "Retired"

    segment = models.CharField(max_length=3, choices=Segment.choices)
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CANDIDATE)
    booster_ubj = models.BinaryField(help_text="xgboost.Booster.save_raw('ubj')")
    feature_names = models.JSONField()
    categories = models.JSONField(default=dict, help_text="Category list per categorical feature, in code order.")
    monotone_constraints = models.JSONField(default=list)
    params = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    calibration = models.JSONField(
        default=dict,
        blank=True,
        help_text='Platt scaling on the margin, {"a": ..., "b": ...}; empty when it did not help.',
    )
    training_window = models.JSONField(default=dict, help_text="First and last application date trained on.")
    data_hash = models.CharField(max_length=64, blank=True)
    trained_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["segment", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["segment", "version"], name="modelversion_unique_version"),
            models.UniqueConstraint(
                fields=["segment"],
                condition=models.Q(status="champion"),
                name="modelversion_one_champion_per_segment",
                violation_error_message="A segment has one champion model at a time.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.segment}-v{self.version} ({self.status})"

    @property
    def label(self) -> str:
        return f"{self.segment}-v{self.version}"


class PolicyVersion(models.Model):
    """The decision policy risk managers own: PD thresholds and knock-out rules. Never edited in place."""

    segment = models.CharField(max_length=3, choices=Segment.choices)
    version = models.PositiveIntegerField()
    is_current = models.BooleanField(default=False)
    accept_max_pd = models.FloatField(help_text="PD below which the recommendation is accept.")
    guarantee_max_pd = models.FloatField(help_text="PD below which a guarantee is asked for; above, refuse.")
    knockouts = models.JSONField(
        default=dict,
        help_text='{"open_insolvency_proceeding": true, "sanctioned_naf_codes": [...], "max_amount": 500000}',
    )
    limit_revenue_share = models.FloatField(
        default=0.1, help_text="Recommended limit: this share of revenue, scaled by (1 - PD / guarantee_max_pd)."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["segment", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["segment", "version"], name="policy_unique_version"),
            models.UniqueConstraint(
                fields=["segment"],
                condition=models.Q(is_current=True),
                name="policy_one_current_per_segment",
                violation_error_message="A segment has one current policy at a time.",
            ),
            models.CheckConstraint(
                condition=models.Q(accept_max_pd__gt=0)
                & models.Q(accept_max_pd__lte=models.F("guarantee_max_pd"))
                & models.Q(guarantee_max_pd__lt=1),
                name="policy_thresholds_ordered",
                violation_error_message="Thresholds must satisfy 0 < accept ≤ guarantee < 1.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.segment} policy v{self.version}"

    @property
    def label(self) -> str:
        return f"{self.segment}-policy-v{self.version}"


class FeatureSnapshot(models.Model):
    """What the sources said about a dossier when it was scored (derived values only, never bank lines)."""

    dossier = models.ForeignKey("dossiers.Dossier", on_delete=models.CASCADE, related_name="feature_snapshots")
    features = models.JSONField()
    provenance = models.JSONField(default=dict, help_text="Per source: name, fetched_at, status.")
    collected_at = models.DateTimeField()

    class Meta:
        ordering = ["-collected_at"]
        indexes = [
            # Training and scoring read the latest snapshot of a dossier.
            models.Index(fields=["dossier", "-collected_at"], name="snapshot_dossier_latest_idx"),
        ]


class Score(models.Model):
    """One scoring of a dossier, reproducible from the model and policy versions it records."""

    dossier = models.ForeignKey("dossiers.Dossier", on_delete=models.CASCADE, related_name="scores")
    snapshot = models.ForeignKey(FeatureSnapshot, on_delete=models.PROTECT, related_name="scores")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="scores")
    policy_version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="scores")
    probability_of_default = models.FloatField()
    score = models.IntegerField()
    band = models.CharField(max_length=1)
    decision = models.CharField(max_length=10, choices=Decision.choices)
    recommended_limit = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    rules_fired = models.JSONField(default=list)
    base_value = models.FloatField(help_text="SHAP base value (log-odds).")
    contributions = models.JSONField(help_text="Exact TreeSHAP contribution per feature (log-odds).")
    factors = models.JSONField(help_text="Top reasons, ordered by absolute contribution.")
    data_flags = models.JSONField(default=list, help_text="Sources that failed or had nothing: the analyst is told.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The latest score of a dossier (API GET, dossier page, queue).
            models.Index(fields=["dossier", "-created_at"], name="score_dossier_latest_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(probability_of_default__gte=0, probability_of_default__lte=1),
                name="score_pd_is_probability",
                violation_error_message="A probability of default lies in [0, 1].",
            ),
        ]


class FinancialStatement(models.Model):
    """Balance-sheet and income items of one fiscal year, supplied by a partner or an analyst."""

    class Source(models.TextChoices):
        PARTNER = "partner", "Partner (API)"
        ANALYST = "analyst", "Analyst upload"

    company = models.ForeignKey("dossiers.Company", on_delete=models.CASCADE, related_name="statements")
    fiscal_year_end = models.DateField()
    source = models.CharField(max_length=10, choices=Source.choices)
    revenue = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    net_income = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    ebitda = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    equity = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    total_assets = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    current_assets = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    current_liabilities = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    financial_debt = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    supplied_by_client = models.ForeignKey(
        "riskoffice.ApiClient", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    supplied_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-fiscal_year_end", "-created_at"]
        indexes = [
            # Scoring reads a company's latest statement.
            models.Index(fields=["company", "-fiscal_year_end"], name="statement_company_latest_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(total_assets__isnull=True) | models.Q(total_assets__gte=0),
                name="statement_assets_not_negative",
                violation_error_message="Total assets cannot be negative.",
            ),
            models.CheckConstraint(
                condition=models.Q(revenue__isnull=True) | models.Q(revenue__gte=0),
                name="statement_revenue_not_negative",
                violation_error_message="Revenue cannot be negative.",
            ),
        ]


class SourceCache(models.Model):
    """A source's answer for a key (a SIREN), shared by every worker until it expires."""

    source = models.CharField(max_length=50)
    key = models.CharField(max_length=100)
    payload = models.JSONField()
    fetched_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "key"], name="sourcecache_unique_key"),
        ]


class BulkScoringJob(models.Model):
    """A CSV scored row by row with the segment's champion; input and output kept in the database."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    segment = models.CharField(max_length=3, choices=Segment.choices)
    filename = models.CharField(max_length=200)
    input_csv = models.BinaryField()
    output_csv = models.BinaryField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The sweep that re-enqueues a queued job whose message was lost backs off (riskoffice.queueing).
    requeues = models.PositiveSmallIntegerField(default=0)
    requeue_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rows_done__lte=models.F("rows_total")),
                name="bulkjob_progress_bounded",
                violation_error_message="Rows done cannot exceed the rows in the file.",
            ),
        ]
