from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from .models import OverrideReason


@admin.register(OverrideReason)
class OverrideReasonAdmin(admin.ModelAdmin):
    """The reason codes analysts pick when overriding. A code in use is never deleted nor renamed: deactivate it.

    Past overrides keep pointing at their code, so the history still says why; an inactive code
    leaves the override form only.
    """

    list_display = ("code", "label_fr", "label_en", "is_active", "position", "times_used")
    list_editable = ("is_active", "position")
    list_filter = ("is_active",)
    search_fields = ("code", "label_fr", "label_en")
    ordering = ("position", "code")
    actions = ["deactivate", "activate"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[OverrideReason]:
        return super().get_queryset(request).annotate(used=Count("overrides"))

    @admin.display(description=_("times used"), ordering="used")
    def times_used(self, obj: OverrideReason) -> int:
        return obj.used

    def get_readonly_fields(self, request: HttpRequest, obj: OverrideReason | None = None) -> tuple[str, ...]:
        # Renaming a code in use would change what past overrides say.
        return ("code",) if obj is not None and obj.overrides.exists() else ()

    def has_delete_permission(self, request: HttpRequest, obj: OverrideReason | None = None) -> bool:
        if obj is not None and obj.overrides.exists():
            return False  # overrides point at it: deactivate instead
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a bulk delete would not ask, code by code, whether it is in use
        return actions

    @admin.action(description=_("Deactivate the selected codes (they leave the override form)"))
    def deactivate(self, request: HttpRequest, queryset: QuerySet[OverrideReason]) -> None:
        count = queryset.update(is_active=False)
        self.message_user(request, _("%(count)d code(s) deactivated.") % {"count": count})

    @admin.action(description=_("Activate the selected codes"))
    def activate(self, request: HttpRequest, queryset: QuerySet[OverrideReason]) -> None:
        count = queryset.update(is_active=True)
        self.message_user(request, _("%(count)d code(s) activated.") % {"count": count})
