"""Model versions, decision policies, collected features and scores."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_cryptography.fields import encrypt


class Segment(models.TextChoices):
    """Who is scored: each segment has its own features, model, policy and score scale."""

    B2B = "b2b", "Company (B2B)"
    B2C = "b2c", "Individual (B2C)"


class Decision(models.TextChoices):
    """What the policy recommends, and what a dossier's decision in force can be."""

    ACCEPT = "accept", _("Accept")
    GUARANTEE = "guarantee", _("Ask for a guarantee")
    REFUSE = "refuse", _("Refuse")
    # The data behind the score is too thin to decide on (docs/policy.md): an analyst decides.
    REFER = "refer", _("Refer to an analyst")


# Outcomes (dossiers.Outcome.status) a model learns as a default: a write-off follows a default.
DEFAULT_OUTCOMES = ("defaulted", "written_off")


class ModelVersion(models.Model):
    """A trained XGBoost model, stored in XGBoost's own UBJ format in the database.

    Kept in the database (not on a disk) so that every worker on every machine loads
    the same bytes; never pickled.
    """

    class Status(models.TextChoices):
        CANDIDATE = "candidate", _("Candidate")
        # Trained by a retraining, compared with the champion, shadow-scoring live dossiers until a
        # senior analyst approves (it becomes the champion) or rejects it.
        CHALLENGER = "challenger", _("Challenger")
        CHAMPION = "champion", _("Champion")
        RETIRED = "retired", _("Retired")
        REJECTED = "rejected", _("Rejected")

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
    # The training reference PSI compares live scores and features with (scoring/model/drift.py):
    # {"score": {"edges": [...], "shares": [...]}, "features": {name: {...}}, "rows": n}.
    reference = models.JSONField(default=dict, blank=True)
    # The champion/challenger comparison on the out-of-time holdout, with its gates
    # (scoring/model/comparison.py); empty for a version no retraining compared.
    comparison = models.JSONField(default=dict, blank=True)
    # Who decided on a challenger (approved: promoted; rejected) and when.
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

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
            models.UniqueConstraint(
                fields=["segment"],
                condition=models.Q(status="challenger"),
                name="modelversion_one_challenger_per_segment",
                violation_error_message="A segment has one challenger model at a time.",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["candidate", "challenger", "champion", "retired", "rejected"]),
                name="modelversion_status_valid",
                violation_error_message="Unknown model status.",
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
    note = models.TextField(blank=True, help_text="Why this version was made: what it changes and who asked.")
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
    # Bank-derived aggregates and the rest of the inputs: encrypted at rest (riskoffice/crypto.py); raw SQL
    # readers (the portfolio re-score) decrypt with riskoffice.crypto.decrypt_json.
    features = encrypt(models.JSONField())
    provenance = models.JSONField(default=dict, help_text="Per source: name, fetched_at, status.")
    collected_at = models.DateTimeField()

    class Meta:
        ordering = ["-collected_at"]
        indexes = [
            # Training and scoring read the latest snapshot of a dossier.
            models.Index(fields=["dossier", "-collected_at"], name="snapshot_dossier_latest_idx"),
        ]


class Score(models.Model):
    """One scoring of a dossier, reproducible from the model and policy versions it records.

    A dossier's scores are versions 1, 2, ...: the application's first scoring, then one per
    challenge or retry. Earlier versions stay; the latest is the one in force.
    """

    class Trigger(models.TextChoices):
        APPLICATION = "application", _("Application")
        CHALLENGE = "challenge", _("Challenge")
        RETRY = "retry", _("Retry")

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
    # The reasons quote feature values (income, balances…): encrypted like the snapshot.
    factors = encrypt(models.JSONField(help_text="Top reasons, ordered by absolute contribution."))
    data_flags = models.JSONField(default=list, help_text="Sources that failed or had nothing: the analyst is told.")
    version = models.PositiveSmallIntegerField(default=1, help_text="1 for the application, then one per re-score.")
    trigger = models.CharField(max_length=12, choices=Trigger.choices, default=Trigger.APPLICATION)
    # The challenge that asked for this re-score, if one did.
    challenge = models.ForeignKey(
        "dossiers.Challenge", null=True, blank=True, on_delete=models.PROTECT, related_name="scores"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The latest score of a dossier (API GET, dossier page, queue).
            models.Index(fields=["dossier", "-created_at"], name="score_dossier_latest_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["dossier", "version"],
                name="score_unique_version_per_dossier",
                violation_error_message="A dossier has one score per version.",
            ),
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
    """A CSV scored row by row with the segment's champion; input and output kept encrypted in the database.

    The files expire (``scoring.bulk.retention.expire_bulk_files``): both are then emptied and
    ``files_expired_at`` says when; the job, its counts and its audit rows stay.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    segment = models.CharField(max_length=3, choices=Segment.choices)
    filename = models.CharField(max_length=200)
    # Every column of the partner's file: encrypted with the keyring (riskoffice/crypto.py), expired by retention.
    input_csv = encrypt(models.BinaryField(null=True, blank=True))
    output_csv = encrypt(models.BinaryField(null=True, blank=True))
    files_expired_at = models.DateTimeField(null=True, blank=True)
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


# --- Portfolio re-score (scoring/portfolio/) ----------------------------------------------------


class PortfolioRun(models.Model):
    """One re-score of a segment's portfolio with one model version, split into chunks of company ids.

    The model version is fixed when the run starts, so a promotion during the run never mixes two models
    in one run's scores.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Scope(models.TextChoices):
        PORTFOLIO = "portfolio", "Every scored company"
        MONITORED = "monitored", "Monitored companies (open exposure or watched)"
        EVENT = "event", "One company, after a negative event"

    segment = models.CharField(max_length=3, choices=Segment.choices)
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.PORTFOLIO)
    # scope=event: the negative event that asked for the re-score.
    trigger_event = models.ForeignKey(
        "alerts.NegativeEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="portfolio_runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    started_by_system = models.CharField(max_length=50, blank=True, help_text="A command or a periodic task.")
    chunk_size = models.PositiveIntegerField()
    move_threshold = models.PositiveSmallIntegerField(help_text="Points a score must move to be explained.")
    companies_total = models.PositiveIntegerField(default=0, help_text="Companies in the portfolio at the start.")
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0, help_text="Companies scored.")
    rows_moved = models.PositiveIntegerField(default=0, help_text="Companies whose score moved or band changed.")
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds per stage, summed over the chunks.")
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["segment"],
                condition=models.Q(status="running") & ~models.Q(scope="event"),
                name="portfolio_one_running_run_per_segment",
                violation_error_message="A segment's portfolio is re-scored by one run at a time.",
            ),
            models.CheckConstraint(
                condition=models.Q(chunks_done__lte=models.F("chunks_total")),
                name="portfolio_run_chunks_bounded",
                violation_error_message="A run cannot finish more chunks than it has.",
            ),
            models.CheckConstraint(
                condition=models.Q(status="running", finished_at__isnull=True)
                | (~models.Q(status="running") & models.Q(finished_at__isnull=False)),
                name="portfolio_run_finished_when_not_running",
                violation_error_message="A run has a finish time exactly when it is no longer running.",
            ),
        ]

    def __str__(self) -> str:
        return f"Portfolio run {self.pk} ({self.segment}, {self.status})"


class PortfolioChunk(models.Model):
    """A range of company ids of a run, taken by one worker at a time under a lease.

    A worker claims a chunk (pending, or running with an expired lease) with a conditional update that
    draws a new ``lease_token``; it writes its scores and marks the chunk done in one transaction only if
    it still holds that token. A worker that dies leaves the lease to expire and another takes the chunk.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    run = models.ForeignKey(PortfolioRun, on_delete=models.CASCADE, related_name="chunks")
    sequence = models.PositiveIntegerField()
    company_from = models.BigIntegerField(help_text="First company id, inclusive.")
    company_to = models.BigIntegerField(help_text="Last company id, inclusive.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    lease_token = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the last worker that claimed it.")
    rows = models.PositiveIntegerField(default=0)
    moved = models.PositiveIntegerField(default=0)
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds per stage of the attempt that finished.")
    peak_rss_kb = models.PositiveIntegerField(null=True, blank=True, help_text="The worker process's ru_maxrss.")
    error = models.TextField(blank=True, help_text="Why the last attempt failed, if it did.")
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "sequence"]
        indexes = [
            # The sweep: unfinished chunks whose lease expired or whose message was lost.
            models.Index(
                fields=["status", "lease_until"],
                condition=~models.Q(status="done"),
                name="portfolio_chunk_open_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "sequence"],
                name="portfolio_chunk_unique_sequence",
                violation_error_message="A run has one chunk per sequence number.",
            ),
            models.CheckConstraint(
                condition=models.Q(company_from__lte=models.F("company_to")),
                name="portfolio_chunk_range_ordered",
                violation_error_message="A chunk's first company id cannot exceed its last.",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="running") | models.Q(lease_token__isnull=False, lease_until__isnull=False),
                name="portfolio_chunk_running_has_lease",
                violation_error_message="A running chunk is held under a lease.",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="done") | models.Q(finished_at__isnull=False, attempts__gte=1),
                name="portfolio_chunk_done_was_attempted",
                violation_error_message="A done chunk was attempted and has a finish time.",
            ),
        ]


class CompanyScore(models.Model):
    """A company's score in one portfolio run: narrow, a million rows a run.

    The explanation (exact TreeSHAP contributions and the top factors) is stored only where the score
    moved by the run's threshold or the band changed; an unchanged row carries no JSON at all.
    """

    run = models.ForeignKey(PortfolioRun, on_delete=models.CASCADE, related_name="scores", db_index=False)
    company = models.ForeignKey(
        "dossiers.Company", on_delete=models.PROTECT, related_name="portfolio_scores", db_index=False
    )
    probability_of_default = models.FloatField()
    score = models.SmallIntegerField()
    band = models.CharField(max_length=1)
    # The last score the company had before this run: its previous run's, or its dossier's if more recent.
    previous_score = models.SmallIntegerField(null=True, blank=True)
    previous_band = models.CharField(max_length=1, blank=True)
    delta = models.GeneratedField(
        expression=models.F("score") - models.F("previous_score"),
        output_field=models.SmallIntegerField(null=True, blank=True),
        db_persist=True,
    )
    base_value = models.FloatField(null=True, blank=True, help_text="SHAP base value (log-odds), moved rows only.")
    contributions = models.JSONField(null=True, blank=True, help_text="Exact TreeSHAP per feature, moved rows only.")
    factors = models.JSONField(null=True, blank=True, help_text="Top reasons, moved rows only.")

    class Meta:
        indexes = [
            # A company's latest score (monitoring, the company page): newest run first.
            models.Index(fields=["company", "-run"], name="cscore_company_latest_idx"),
        ]
        constraints = [
            # Also the index of a run's scores.
            models.UniqueConstraint(
                fields=["run", "company"],
                name="companyscore_one_per_run",
                violation_error_message="A company is scored once per run.",
            ),
            models.CheckConstraint(
                condition=models.Q(probability_of_default__gte=0, probability_of_default__lte=1),
                name="companyscore_pd_is_probability",
                violation_error_message="A probability of default lies in [0, 1].",
            ),
            models.CheckConstraint(
                condition=models.Q(band__in=["A", "B", "C", "D", "E"]),
                name="companyscore_band_known",
                violation_error_message="A band is one of A to E.",
            ),
            models.CheckConstraint(
                condition=models.Q(contributions__isnull=True, factors__isnull=True, base_value__isnull=True)
                | models.Q(contributions__isnull=False, factors__isnull=False, base_value__isnull=False),
                name="companyscore_explanation_whole",
                violation_error_message="An explanation has its base value, contributions and factors together.",
            ),
        ]


class RetrainingRun(models.Model):
    """One retraining of a segment's model: scheduled, triggered by new mature outcomes, or started by hand.

    Its stage and progress are what the back-office shows while it runs; its challenger is what it made.
    """

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", _("Scheduled")
        OUTCOMES = "outcomes", _("New mature outcomes")
        MANUAL = "manual", _("Started by a senior analyst")
        COMMAND = "command", _("Command line")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    segment = models.CharField(max_length=3, choices=Segment.choices)
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=200, blank=True, help_text="What the run is doing, for the back-office.")
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done.")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Matured outcomes in the labelled set when the run started: the "enough new outcomes" trigger counts from it.
    labelled_rows = models.PositiveIntegerField(null=True, blank=True)
    labelled = models.JSONField(default=dict, blank=True, help_text="The labelled set: rows, defaults, left out.")
    challenger = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="retraining_runs"
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The models page: a segment's recent runs, newest first.
            models.Index(fields=["segment", "-created_at"], name="retraining_segment_recent_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["segment"],
                condition=models.Q(status__in=["queued", "running"]),
                name="retraining_one_active_per_segment",
                violation_error_message="A retraining of this segment is already queued or running.",
            ),
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="retraining_progress_percent"),
        ]


class ShadowScore(models.Model):
    """A challenger's score of a live dossier, next to the champion's: never shown to partners, never decides."""

    score = models.ForeignKey(Score, on_delete=models.CASCADE, related_name="shadow_scores")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="shadow_scores")
    probability_of_default = models.FloatField()
    score_value = models.IntegerField()
    band = models.CharField(max_length=1)
    # What the live score's policy version would have recommended with the challenger's PD.
    decision = models.CharField(max_length=10, choices=Decision.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["model_version", "-created_at"], name="shadow_model_latest_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["score", "model_version"],
                name="shadow_once_per_score_and_model",
                violation_error_message="A challenger shadow-scores a score once.",
            ),
            models.CheckConstraint(
                condition=models.Q(probability_of_default__gte=0, probability_of_default__lte=1),
                name="shadow_pd_is_probability",
            ),
        ]


class DriftCheck(models.Model):
    """The daily PSI of a champion's live scores and features against its training reference."""

    segment = models.CharField(max_length=3, choices=Segment.choices)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="drift_checks")
    day = models.DateField()
    window_days = models.PositiveSmallIntegerField()
    scores_compared = models.PositiveIntegerField(default=0)
    psi_score = models.FloatField(null=True, blank=True, help_text="Null when too few scores to compare.")
    psi_features = models.JSONField(default=dict, blank=True, help_text="{feature: PSI}")
    # The worst of the score's and the features' PSI, and what it was.
    psi_max = models.FloatField(null=True, blank=True)
    psi_max_of = models.CharField(max_length=100, blank=True)
    alerted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-day", "segment"]
        indexes = [
            # The models page: a segment's latest check and its last 30 days.
            models.Index(fields=["segment", "-day"], name="driftcheck_segment_recent_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "day"],
                name="driftcheck_once_a_day",
                violation_error_message="A model's drift is checked once a day.",
            ),
        ]
