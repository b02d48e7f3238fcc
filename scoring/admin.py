"""Model and policy versions in the admin: to read, never to write.

Scores point at the model and policy versions that produced them; a version edited or deleted in place
would leave them pointing at something that no longer describes them. So nobody, superusers included, may
add, change or delete one here: policies change through the policy editor (a new version, previewed,
noted and audited), models through the training command (``train_model``: register, promote, retire).
"""

from django.contrib import admin

from scoring.models import ModelVersion, PolicyVersion


class ReadOnlyAdmin(admin.ModelAdmin):
    """List and view only: no add, no change, no delete, no bulk action, for anyone."""

    actions = None

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ("segment", "version", "status", "created_at", "promoted_at")
    list_filter = ("segment", "status")
    exclude = ("booster_ubj",)
    readonly_fields = [f.name for f in ModelVersion._meta.fields if f.name != "booster_ubj"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("booster_ubj")  # megabytes a row, never shown


@admin.register(PolicyVersion)
class PolicyVersionAdmin(ReadOnlyAdmin):
    list_display = ("segment", "version", "is_current", "accept_max_pd", "guarantee_max_pd", "note", "created_at")
    list_filter = ("segment", "is_current")
    readonly_fields = [f.name for f in PolicyVersion._meta.fields]
