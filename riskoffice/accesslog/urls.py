app_name = "accesslog"
urlpatterns: list = []
