from django.contrib import admin

from scoring.models import ModelVersion, PolicyVersion


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("segment", "version", "status", "created_at", "promoted_at")
    exclude = ("booster_ubj",)
    readonly_fields = [f.name for f in ModelVersion._meta.fields if f.name != "booster_ubj"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("booster_ubj")  # megabytes a row, never shown


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    list_display = ("segment", "version", "is_current", "accept_max_pd", "guarantee_max_pd", "created_at")
