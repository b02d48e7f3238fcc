from django.urls import path

from scoring.bulk import views as bulk_views
from scoring.policy import views as policy_views

app_name = "scoring"
urlpatterns = [
    path("bulk/", bulk_views.bulk_upload, name="bulk"),
    path("bulk/<uuid:pk>/", bulk_views.bulk_job_detail, name="bulk-job"),
    path("bulk/<uuid:pk>/download", bulk_views.bulk_job_download, name="bulk-download"),
    path("policy/", policy_views.policy_list, name="policy"),
    path("policy/<str:segment>/new", policy_views.policy_new, name="policy-new"),
]
