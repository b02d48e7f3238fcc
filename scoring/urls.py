from django.urls import path  # noqa: F401 - views register their paths here

app_name = "scoring"
urlpatterns: list = []
