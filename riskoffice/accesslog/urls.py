from django.urls import path

from . import views

app_name = "accesslog"
urlpatterns = [
    path("", views.access_log, name="entries"),
    path("export.csv", views.access_log_export, name="entries-export"),
    path("audit/", views.audit_trail, name="audit"),
    path("audit/export.csv", views.audit_trail_export, name="audit-export"),
]
