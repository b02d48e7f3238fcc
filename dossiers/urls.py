from django.urls import path

from .views import challenge, company, detail, human_review, outcomes, overrides, portfolio, queue

app_name = "dossiers"
urlpatterns = [
    path("", queue.queue, name="queue"),
    # Screens beside the queue (company, portfolio, imports) go above the dossier catch-all.
    path("companies/<str:siren>/", company.company_detail, name="company"),
    path("portfolio/", portfolio.portfolio, name="portfolio"),
    path("outcomes/imports/", outcomes.outcome_import_list, name="outcome-imports"),
    path("outcomes/imports/<uuid:pk>/", outcomes.outcome_import_report, name="outcome-import"),
    path("outcomes/imports/<uuid:pk>/report.csv", outcomes.outcome_import_download, name="outcome-import-download"),
    path("<str:pk>/", detail.dossier_detail, name="detail"),
    path("<str:pk>/take", queue.dossier_take, name="take"),
    path("<str:pk>/release", queue.dossier_release, name="release"),
    path("<str:pk>/override", overrides.dossier_override, name="override"),
    path("<str:pk>/overrides/<int:override_pk>/approve", overrides.override_approve, name="override-approve"),
    path("<str:pk>/overrides/<int:override_pk>/reject", overrides.override_reject, name="override-reject"),
    path("<str:pk>/outcome", outcomes.dossier_outcome, name="outcome"),
    path("<str:pk>/outcome/correct", outcomes.dossier_outcome_correct, name="outcome-correct"),
    path("<str:pk>/statement", detail.dossier_statement, name="statement"),
    path("<str:pk>/challenge", challenge.dossier_challenge, name="challenge"),
    path("<str:pk>/retry", challenge.dossier_retry, name="retry"),
    path("<str:pk>/human-review", human_review.human_review_record, name="human-review"),
    path(
        "<str:pk>/human-review/<int:review_pk>/complete",
        human_review.human_review_complete,
        name="human-review-complete",
    ),
]
