"""The events partners subscribe to: their types, which are critical, and how negative events map to them.

Every event is written in the transaction of the change that caused it (``alerts.services.events_publish``,
the outbox) and carries a stable id (``evt_…``), the same in every endpoint's copy. The payload of each
type is documented in docs/webhooks.md and in the OpenAPI schema (riskoffice/openapi.py).
"""

from __future__ import annotations

from .models import NegativeEvent

Kind = NegativeEvent.Kind

SCORE_COMPLETED = "score.completed"  # a dossier's first score, or a new version after a challenge or a retry
SCORE_CHANGED = "score.changed"  # monitoring re-scored a company and its score moved (not a drop, no band change)
SCORE_DROPPED = "score.dropped"  # monitoring: the score fell by MONITORING_DROP_POINTS or more
SCORE_BAND_CHANGED = "score.band_changed"  # monitoring: the band changed without such a drop
COMPANY_INSOLVENCY_PROCEEDING = "company.insolvency_proceeding"
COMPANY_PAYMENT_DELAY = "company.payment_delay"
COMPANY_SEPA_REJECTION = "company.sepa_rejection"
COMPANY_DEBT_COLLECTION = "company.debt_collection"
COMPANY_ACCOUNTS_PUBLISHED = "company.accounts_published"
DOSSIER_CHALLENGED = "dossier.challenged"
DECISION_OVERRIDDEN = "decision.overridden"
OUTCOME_RECORDED = "outcome.recorded"
OUTCOME_CORRECTED = "outcome.corrected"
HUMAN_REVIEW_REQUESTED = "human_review.requested"
HUMAN_REVIEW_COMPLETED = "human_review.completed"
DATA_SUBJECT_ERASED = "data_subject.erased"
DIGEST = "digest.daily"  # not subscribable: the daily bundle of a digest endpoint's held events

# What a partner can subscribe to (docs/webhooks.md, "Events").
EVENT_TYPES = (
    SCORE_COMPLETED,
    SCORE_CHANGED,
    SCORE_DROPPED,
    SCORE_BAND_CHANGED,
    COMPANY_INSOLVENCY_PROCEEDING,
    COMPANY_PAYMENT_DELAY,
    COMPANY_SEPA_REJECTION,
    COMPANY_DEBT_COLLECTION,
    COMPANY_ACCOUNTS_PUBLISHED,
    DOSSIER_CHALLENGED,
    DECISION_OVERRIDDEN,
    OUTCOME_RECORDED,
    OUTCOME_CORRECTED,
    HUMAN_REVIEW_REQUESTED,
    HUMAN_REVIEW_COMPLETED,
    DATA_SUBJECT_ERASED,
)

# Sent at once even to an endpoint that asked for a daily digest: a partner acts on these the same day.
CRITICAL_EVENT_TYPES = frozenset(
    {
        SCORE_DROPPED,
        SCORE_BAND_CHANGED,
        COMPANY_INSOLVENCY_PROCEEDING,
        COMPANY_PAYMENT_DELAY,
        COMPANY_SEPA_REJECTION,
        COMPANY_DEBT_COLLECTION,
        HUMAN_REVIEW_REQUESTED,
        HUMAN_REVIEW_COMPLETED,
        DATA_SUBJECT_ERASED,
    }
)

# The event a negative event on a company becomes (score_drop is the monitoring's own record: score.dropped).
NEGATIVE_EVENT_TYPES = {
    Kind.INSOLVENCY_PROCEEDING: COMPANY_INSOLVENCY_PROCEEDING,
    Kind.PAYMENT_DELAY: COMPANY_PAYMENT_DELAY,
    Kind.SEPA_INCIDENT: COMPANY_SEPA_REJECTION,
    Kind.DEBT_COLLECTION: COMPANY_DEBT_COLLECTION,
    Kind.ACCOUNTS_PUBLISHED: COMPANY_ACCOUNTS_PUBLISHED,
}
