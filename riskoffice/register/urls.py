from django.urls import path

from . import views

app_name = "register"
urlpatterns = [
    path("export.csv", views.register_export_csv, name="export-csv"),
    path("print/", views.register_print, name="print"),
]
