from django.urls import path

from scoring.bulk import views as bulk_views
from scoring.model import views as model_views
from scoring.policy import views as policy_views

app_name = "scoring"
urlpatterns = [
    path("bulk/", bulk_views.bulk_upload, name="bulk"),
    path("bulk/<uuid:pk>/", bulk_views.bulk_job_detail, name="bulk-job"),
    path("bulk/<uuid:pk>/download", bulk_views.bulk_job_download, name="bulk-download"),
    path("policy/", policy_views.policy_list, name="policy"),
    path("policy/<str:segment>/new", policy_views.policy_new, name="policy-new"),
    path("models/", model_views.model_list, name="models"),
    path("models/<int:pk>/", model_views.model_detail, name="model-detail"),
    path("models/<int:pk>/card.md", model_views.model_card_download, {"fmt": "md"}, name="model-card-md"),
    path("models/<int:pk>/card.json", model_views.model_card_download, {"fmt": "json"}, name="model-card-json"),
    path("models/<int:pk>/approve", model_views.model_approve, name="model-approve"),
    path("models/<int:pk>/reject", model_views.model_reject, name="model-reject"),
    path("models/<str:segment>/rollback", model_views.model_rollback, name="model-rollback"),
    path("models/<str:segment>/retrain", model_views.model_retrain, name="model-retrain"),
    path("models/retraining/<int:pk>/", model_views.retraining_progress, name="retraining-progress"),
]
