"""The register as this product processes data: its data categories with their periods, and its six activities.

Idempotent: a category or an activity that exists (by code, by reference) is left as the admins made it.
Only the controller can name itself and its DPO: those fields say "[to complete]", which
``manage.py gdpr_register --check`` lists as a reminder.
"""

from django.db import migrations

TO_COMPLETE = "[to complete]"

CATEGORIES = [
    {
        "code": "bank_tokens",
        "name": "Open-banking tokens",
        "description": "The aggregator tokens a partner sends with a score request (stored encrypted). Counted from "
        "the dossier's creation; cleared to an empty list at the end of the period.",
        "retention_days": 30,
        "retention_basis": "GDPR Art. 5(1)(c) and (e), minimisation and storage limitation: a token is only needed to "
        "read the bank aggregates when the dossier is scored, and for a re-score after a challenge in the following "
        "weeks. Bank statements and transactions are never stored.",
        "action": "delete",
    },
    {
        "code": "bank_aggregates",
        "name": "Bank-account aggregates",
        "description": "Balances, overdraft days, inflow regularity over 12 months, derived from open banking and "
        "stored in the dossier's feature snapshot. They follow the dossier: anonymised with a refused application "
        "or with a closed credit file.",
        "retention_days": 1826,
        "retention_basis": "Part of the credit file: the periods of refused applications (6 months) and granted credit "
        "files (5 years after the credit closed, Code monétaire et financier L561-12) apply.",
        "action": "anonymise",
    },
    {
        "code": "bulk_files",
        "name": "Bulk scoring files",
        "description": "CSV files analysts upload for bulk scoring, and their results. Counted from the upload.",
        "retention_days": 30,
        "retention_basis": "GDPR Art. 5(1)(e): the analyst downloads the results within days; the file is a working "
        "copy, the decisions are recorded on the dossiers.",
        "action": "delete",
    },
    {
        "code": "refused_applications",
        "name": "Applications not granted",
        "description": "Dossiers never granted (refused, referred and never decided, failed), counted from the "
        "application. Anonymised: the scores stay for model governance, nothing points to the applicant.",
        "retention_days": 183,
        "retention_basis": "CNIL practice for credit applications: the data of a refused application is kept no longer "
        "than 6 months, long enough to answer the applicant and handle a challenge (GDPR Art. 5(1)(e), 22(3)).",
        "action": "anonymise",
    },
    {
        "code": "credit_files",
        "name": "Granted credit files",
        "description": "Dossiers of granted credit, counted from the credit's last outcome (repaid or written off). A "
        "defaulted credit still being recovered is kept. Anonymised at the end of the period.",
        "retention_days": 1826,
        "retention_basis": "Anti-money-laundering: documents on a customer and its operations are kept 5 years after the "
        "end of the relationship (Code monétaire et financier L561-12); the 5-year limitation period of commercial "
        "claims (Code de commerce L110-4).",
        "action": "anonymise",
    },
    {
        "code": "access_log",
        "name": "Back-office access log",
        "description": "Who read or changed what in the back-office, from where. Counted from the access.",
        "retention_days": 365,
        "retention_basis": "CNIL recommendation on logging (deliberation 2021-122): access logs are kept 6 months to 1 "
        "year to detect and investigate misuse (GDPR Art. 32).",
        "action": "delete",
    },
    {
        "code": "webhook_deliveries",
        "name": "Webhook deliveries",
        "description": "Copies of the events sent to partners (score.completed, alerts…) with their delivery status. "
        "Delivered or abandoned deliveries, counted from the event; pending ones are kept until they finish.",
        "retention_days": 90,
        "retention_basis": "GDPR Art. 5(1)(e): retries end after about 3 days; 90 days lets a partner's missed event be "
        "investigated; the decision itself is recorded on the dossier.",
        "action": "delete",
    },
    {
        "code": "idempotency_keys",
        "name": "Idempotency keys",
        "description": "A partner's Idempotency-Key and the stored answer to its request. Expired keys only.",
        "retention_days": 1,
        "retention_basis": "The API contract keeps a key 24 hours (IDEMPOTENCY_KEY_TTL_SECONDS); after that it has no "
        "use (GDPR Art. 5(1)(e)).",
        "action": "delete",
    },
    {
        "code": "source_cache",
        "name": "Data-source cache",
        "description": "Answers of the company registry and BODACC cached per SIREN (public data, which may concern "
        "sole traders). Expired entries fetched before the cutoff.",
        "retention_days": 1,
        "retention_basis": "A cache: its entries expire within 24 hours (SOURCE_CACHE_SECONDS_*); an expired entry is "
        "never read again (GDPR Art. 5(1)(e)).",
        "action": "delete",
    },
    {
        "code": "negative_events",
        "name": "Negative events",
        "description": "Payment delays, SEPA incidents, insolvency proceedings and other events on file about a company "
        "or an individual, counted from the date of the event.",
        "retention_days": 1095,
        "retention_basis": "Scoring counts the events of the last 12 months; 3 years lets an analyst explain a past "
        "score during a challenge or a review of the credit (GDPR Art. 5(1)(e)).",
        "action": "delete",
    },
    {
        "code": "audit_trail",
        "name": "Audit trail",
        "description": "Who decided what and when: scores, overrides, outcomes, configuration changes. Free texts about "
        "a person are redacted when the dossier is anonymised.",
        "retention_days": 1826,
        "retention_basis": "Evidence of credit decisions and their controls, kept as long as the credit files they "
        "document (Code monétaire et financier L561-12; EBA/GL/2020/06 on documenting automated decisions). No "
        "automatic deletion: the DPO reviews it.",
        "action": "keep",
    },
    {
        "code": "anonymised_scores",
        "name": "Anonymised scores and features",
        "description": "Scores, probabilities of default, contributions and features of anonymised dossiers, kept to "
        "train, validate and monitor the models.",
        "retention_days": 3650,
        "retention_basis": "No longer personal data once anonymised (GDPR recital 26); model governance: validation on "
        "out-of-time data and monitoring (EBA/GL/2020/06), technical documentation kept 10 years (AI Act Art. 18).",
        "action": "keep",
    },
]

CONTROLLER = {
    "controller_name": f"{TO_COMPLETE} the company operating this riskoffice installation",
    "controller_contact": f"{TO_COMPLETE} postal address, e-mail and telephone of the controller",
    "dpo_contact": f"{TO_COMPLETE} e-mail and postal address of the data protection officer",
}
SECURITY = (
    "TLS for every exchange; partners authenticate with OAuth 2.0 client credentials, tokens stored hashed, scopes "
    "per client, rate limits; open-banking tokens and webhook secrets encrypted at rest (AES-256 + HMAC-SHA256); "
    "back-office roles (analyst, senior analyst, admin, auditor), login lockout after repeated failures, "
    "Content-Security-Policy; every decision audited (who, when, before, after); back-office access logged; "
    "each lookup scoped to the partner or user allowed to see it; retention applied daily by the register's task."
)
B2B_B2C_SUBJECTS = (
    "Applicants for credit: individuals (B2C), known only by the partner's internal reference; companies (B2B), "
    "whose data is personal when they are sole traders or when it names their managers."
)

ACTIVITIES = [
    {
        "reference": "PA-01",
        "name": "Credit scoring of companies and individuals",
        "purposes": "Assess the credit risk of an application (a probability of default within 12 months, a score, "
        "a band) and recommend a decision (accept, guarantee, refuse, refer) with a recommended limit, explained by "
        "its main reasons, for the partner that grants the credit and the analysts who review it.",
        "legal_basis": "contract",
        "legal_basis_detail": "Individuals: steps taken at their request before entering into a credit contract "
        "(Art. 6(1)(b)); the automated decision is necessary for that contract (Art. 22(2)(a)) with the safeguards "
        "of Art. 22(3). Companies and sole traders: legitimate interest of the lender in assessing credit risk "
        "(Art. 6(1)(f)).",
        "data_subject_categories": B2B_B2C_SUBJECTS,
        "personal_data_categories": "Identifiers (SIREN, VAT number, company name, NAF code; for individuals the "
        "partner's reference only, no name or national id); the requested amount; financial statements; "
        "bank-account aggregates over 12 months derived from open banking (never statements or transactions); "
        "open-banking tokens (encrypted); negative events on file; the score, its reasons and the decision; "
        "analysts' challenges, overrides and outcomes of the credit.",
        "recipients": "The partner that requested the score; the operator's credit analysts, senior analysts and "
        "auditors. No other recipient.",
        "retention_summary": "Bank tokens 30 days; refused applications 6 months; granted credit files 5 years after "
        "the credit closed; bulk files 30 days; cache 1 day; then anonymised or deleted by the daily retention task.",
        "automated_decision": True,
        "automated_decision_logic": "Each application is scored by a gradient-boosted tree model (XGBoost) trained per "
        "segment (companies, individuals), which gives a probability of default (PD) within 12 months from the inputs "
        "of the feature catalogue: company age, sector, headcount, financial ratios, the amount relative to revenue, "
        "12-month bank-account aggregates, negative events of the last 12 months; missing data stays missing and is "
        "named. The PD is mapped to points (companies 0-1000, individuals 300-850) and a band A-E. The exact "
        "contribution of every input (TreeSHAP: the base value plus the contributions equals the PD's log-odds) is "
        "computed and the four largest are given as reasons. A versioned decision policy, edited by senior analysts, "
        "turns the PD into a recommendation: PD thresholds for accept, guarantee and refuse; knock-out rules (open "
        "insolvency proceeding, sanctioned sector, amount above the cap); a recommended limit; a referral to an "
        "analyst when the data is too thin. Every score records the model and policy versions that produced it. "
        "Significance: the partner's credit decision (a limit, a refusal) relies on it. Safeguards (Art. 22(3)): "
        "human review by an analyst on request, who may override with a coded reason (four eyes above an authority "
        "limit); the person may express their view and contest, and a challenge with corrected data is re-scored; "
        "the reasons are given on request (Art. 15(1)(h)); models are validated and monitored (AUC, calibration, "
        "PSI) and promoted by senior analysts only.",
        "data_sources": "The partner's request (identifiers, amount, bank tokens, financial statements); the company "
        "registry (API Recherche d'entreprises); BODACC insolvency notices; the open-banking aggregator; negative "
        "events reported by partners; analysts' corrections.",
        "categories": [
            "bank_tokens",
            "bank_aggregates",
            "refused_applications",
            "credit_files",
            "bulk_files",
            "source_cache",
        ],
    },
    {
        "reference": "PA-02",
        "name": "Partner API: score requests and answers",
        "purposes": "Receive partners' score requests, outcomes and negative events over the API, and return the "
        "scores with their reasons; count usage for billing.",
        "legal_basis": "legitimate_interests",
        "legal_basis_detail": "Legitimate interest of the operator and its partners in exchanging credit-risk "
        "information under their contract (Art. 6(1)(f)); for individuals, the steps before their credit contract "
        "(Art. 6(1)(b)).",
        "data_subject_categories": B2B_B2C_SUBJECTS,
        "personal_data_categories": "The request (identifiers, amount, bank tokens), the stored answer of an "
        "idempotent request, the score returned, outcomes and events reported.",
        "recipients": "The partner that sent the request, only: every lookup is scoped to its own dossiers.",
        "retention_summary": "Idempotency keys 1 day after they expire; the dossiers as in PA-01.",
        "automated_decision": False,
        "automated_decision_logic": "",
        "data_sources": "Partners' systems (marketplaces, ERPs, credit insurers, lenders).",
        "categories": ["idempotency_keys", "refused_applications", "credit_files"],
    },
    {
        "reference": "PA-03",
        "name": "Webhooks to partners",
        "purposes": "Notify a partner of the events it subscribed to: a score completed, a score drop, a negative "
        "event, a human review, an erasure.",
        "legal_basis": "legitimate_interests",
        "legal_basis_detail": "Legitimate interest of the partner in acting on a change of risk on its own customers "
        "(cutting a limit, holding a shipment) under its contract (Art. 6(1)(f)).",
        "data_subject_categories": B2B_B2C_SUBJECTS,
        "personal_data_categories": "The event's payload: the dossier's identifiers, score, band, decision and "
        "reasons, or the negative event.",
        "recipients": "The partner's webhook endpoint, signed (Standard Webhooks, HMAC-SHA256), https only in "
        "production.",
        "retention_summary": "Delivered or abandoned deliveries 90 days.",
        "automated_decision": False,
        "automated_decision_logic": "",
        "data_sources": "The scores and events of PA-01 and PA-04.",
        "categories": ["webhook_deliveries"],
    },
    {
        "reference": "PA-04",
        "name": "Monitoring of negative events and alerts",
        "purposes": "Record negative events (insolvency proceedings, payment delays, SEPA incidents, score drops) "
        "about applicants, take them into account in scoring and alert the partners concerned.",
        "legal_basis": "legitimate_interests",
        "legal_basis_detail": "Legitimate interest of the lender in following the risk of its existing exposures "
        "(Art. 6(1)(f)); insolvency notices are public (BODACC).",
        "data_subject_categories": B2B_B2C_SUBJECTS,
        "personal_data_categories": "The event: its kind, date, amount, days late, reason code, source.",
        "recipients": "The partners holding a dossier on the applicant (webhooks); the operator's analysts.",
        "retention_summary": "Negative events 3 years from the event; cached BODACC answers 1 day.",
        "automated_decision": False,
        "automated_decision_logic": "",
        "data_sources": "Partners (POST /api/v1/events), BODACC open data, score changes.",
        "categories": ["negative_events", "source_cache"],
    },
    {
        "reference": "PA-05",
        "name": "Back-office access logging and security",
        "purposes": "Log who accesses or changes data in the back-office and keep the audit trail of decisions, to "
        "detect misuse, investigate incidents and prove the controls.",
        "legal_basis": "legal_obligation",
        "legal_basis_detail": "The security obligation of GDPR Art. 32 and the documentation of credit decisions "
        "(EBA/GL/2020/06) (Art. 6(1)(c)).",
        "data_subject_categories": "The operator's users (analysts, senior analysts, admins, auditors); the "
        "applicants whose dossiers they open.",
        "personal_data_categories": "User name, time, address, the page or object accessed, the action and its "
        "before/after values.",
        "recipients": "Admins and auditors of the operator; the supervisory authority on request.",
        "retention_summary": "Access log 1 year (CNIL); audit trail as long as the credit files, reviewed by the DPO.",
        "automated_decision": False,
        "automated_decision_logic": "",
        "data_sources": "The back-office and the API themselves.",
        "categories": ["access_log", "audit_trail"],
    },
    {
        "reference": "PA-06",
        "name": "Model training from credit outcomes",
        "purposes": "Train, validate and monitor the scoring models on past applications and what became of the "
        "credit (repaid, defaulted, written off); compare a challenger with the champion before promotion.",
        "legal_basis": "legitimate_interests",
        "legal_basis_detail": "Legitimate interest in accurate, monitored models (Art. 6(1)(f)), and the model "
        "governance expected of lenders (EBA/GL/2020/06; AI Act Annex III 5(b) for individuals).",
        "data_subject_categories": "Past applicants whose credit was granted and has an outcome.",
        "personal_data_categories": "Features of the feature snapshot, the outcome and its date; no name or "
        "identifier is needed by training; anonymised dossiers keep only their scores and features.",
        "recipients": "The operator's senior analysts (model owners); no one outside.",
        "retention_summary": "Credit files 5 years after the credit closed, then anonymised; anonymised scores kept "
        "10 years for model governance.",
        "automated_decision": False,
        "automated_decision_logic": "",
        "data_sources": "The dossiers and outcomes of PA-01 and PA-02.",
        "categories": ["credit_files", "anonymised_scores"],
    },
]

_SNAPSHOT_SKIP = {"id", "created_at", "updated_at", "created_by", "updated_by"}


def seed(apps, schema_editor):
    DataCategory = apps.get_model("register", "DataCategory")
    ProcessingActivity = apps.get_model("register", "ProcessingActivity")
    Revision = apps.get_model("register", "ProcessingActivityRevision")
    AuditEvent = apps.get_model("riskoffice", "AuditEvent")

    categories = {}
    for values in CATEGORIES:
        category, created = DataCategory.objects.get_or_create(code=values["code"], defaults=values)
        categories[category.code] = category
        if created:
            AuditEvent.objects.create(
                actor_system="seed",
                action="register.category_created",
                object_type="register.datacategory",
                object_id=str(category.pk),
                after={key: value for key, value in values.items()},
            )
    for values in ACTIVITIES:
        if ProcessingActivity.objects.filter(reference=values["reference"]).exists():
            continue
        fields = {key: value for key, value in values.items() if key != "categories"}
        activity = ProcessingActivity.objects.create(
            **fields, **CONTROLLER, security_measures=SECURITY, third_country_transfers=False
        )
        activity.retention_categories.set([categories[code] for code in values["categories"]])
        snapshot = {}
        for field in ProcessingActivity._meta.get_fields():
            if field.name in _SNAPSHOT_SKIP or field.auto_created or not field.concrete:
                continue
            if field.name == "recipient_partners":
                snapshot[field.name] = []
            elif field.name == "retention_categories":
                snapshot[field.name] = sorted(values["categories"])
            else:
                snapshot[field.name] = getattr(activity, field.attname)
        Revision.objects.create(
            activity=activity, number=1, snapshot=snapshot, changed_fields=list(snapshot), changed_by_system="seed"
        )
        AuditEvent.objects.create(
            actor_system="seed",
            action="register.activity_created",
            object_type="register.processingactivity",
            object_id=str(activity.pk),
            after=snapshot,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("register", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
