from django.urls import path

from . import views_bulk, views_policy

app_name = "scoring"
urlpatterns = [
    path("bulk/", views_bulk.bulk_upload, name="bulk"),
    path("bulk/<uuid:pk>/", views_bulk.bulk_job_detail, name="bulk-job"),
    path("bulk/<uuid:pk>/download", views_bulk.bulk_job_download, name="bulk-download"),
    path("policy/", views_policy.policy_list, name="policy"),
    path("policy/<str:segment>/new", views_policy.policy_new, name="policy-new"),
]
