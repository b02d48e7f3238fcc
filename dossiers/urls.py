from django.urls import path

from . import views

app_name = "dossiers"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("<str:pk>/", views.dossier_detail, name="detail"),
    path("<str:pk>/override", views.dossier_override, name="override"),
    path("<str:pk>/outcome", views.dossier_outcome, name="outcome"),
    path("<str:pk>/statement", views.dossier_statement, name="statement"),
]
