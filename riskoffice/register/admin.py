"""The register in Django's admin: admins edit it, auditors read it, nobody else sees it.

Saves go through the services (a revision and an audit row per change); an activity with a history is
deactivated, never deleted; its revisions are shown read-only on its page.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from riskoffice.audit import Actor
from riskoffice.roles import ADMIN, AUDITOR, has_any_role

from .models import DataCategory, ProcessingActivity, ProcessingActivityRevision
from .services import data_category_save, processing_activity_deactivate, processing_activity_save


def _is_admin(request: HttpRequest) -> bool:
    return has_any_role(request.user, {ADMIN})


def _may_read(request: HttpRequest) -> bool:
    return has_any_role(request.user, {ADMIN, AUDITOR})


class RegisterAccess:
    """Role-based rights for the register's screens: admins manage, auditors read, other roles see nothing."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _may_read(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return _may_read(request)

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return _is_admin(request)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return _is_admin(request)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class RevisionInline(admin.TabularInline):
    """The activity's history: read-only, newest first."""

    model = ProcessingActivityRevision
    extra = 0
    can_delete = False
    ordering = ("-number",)
    fields = ("number", "created_at", "author", "changed_fields_list")
    readonly_fields = fields
    verbose_name_plural = gettext_lazy("history (one revision per change)")

    @admin.display(description=gettext_lazy("by"))
    def author(self, obj: ProcessingActivityRevision) -> str:
        return obj.author

    @admin.display(description=gettext_lazy("changed fields"))
    def changed_fields_list(self, obj: ProcessingActivityRevision) -> str:
        return ", ".join(obj.changed_fields)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("changed_by")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return _may_read(request)


@admin.register(ProcessingActivity)
class ProcessingActivityAdmin(RegisterAccess, admin.ModelAdmin):
    list_display = ("reference", "name", "legal_basis", "automated_decision", "is_active", "updated_at")
    list_filter = ("is_active", "legal_basis", "automated_decision", "third_country_transfers")
    search_fields = ("reference", "name", "purposes")
    filter_horizontal = ("recipient_partners", "retention_categories")
    inlines = [RevisionInline]
    actions = ["deactivate"]
    change_list_template = "admin/register/processingactivity/change_list.html"
    fieldsets = (
        (None, {"fields": ("reference", "name", "is_active")}),
        (
            gettext_lazy("Controller"),
            {"fields": ("controller_name", "controller_contact", "dpo_contact", "joint_controller", "representative")},
        ),
        (
            gettext_lazy("Purposes and legal basis"),
            {"fields": ("purposes", "legal_basis", "legal_basis_detail")},
        ),
        (
            gettext_lazy("Data subjects, data, sources"),
            {"fields": ("data_subject_categories", "personal_data_categories", "data_sources")},
        ),
        (gettext_lazy("Recipients"), {"fields": ("recipients", "recipient_partners")}),
        (
            gettext_lazy("Transfers outside the EU"),
            {"fields": ("third_country_transfers", "transfer_countries", "transfer_safeguards")},
        ),
        (gettext_lazy("Retention"), {"fields": ("retention_categories", "retention_summary")}),
        (gettext_lazy("Security (Art. 32)"), {"fields": ("security_measures",)}),
        (
            gettext_lazy("Automated decision-making (Art. 22)"),
            {"fields": ("automated_decision", "automated_decision_logic")},
        ),
    )

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not _is_admin(request):
            actions.pop("deactivate", None)
        return actions

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        processing_activity_save(
            activity=obj,
            recipient_partners=data.get("recipient_partners") or [],
            retention_categories=data.get("retention_categories") or [],
            actor=Actor(user=request.user),
        )

    def save_related(self, request, form, formsets, change):
        # The service has set the many-to-many fields (they are part of the revision): no form.save_m2m() here.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    @admin.action(description=gettext_lazy("Deactivate the selected activities (their history is kept)"))
    def deactivate(self, request, queryset):
        count = 0
        for activity in queryset.filter(is_active=True):
            processing_activity_deactivate(activity=activity, actor=Actor(user=request.user))
            count += 1
        messages.info(
            request,
            ngettext("%(count)d activity deactivated.", "%(count)d activities deactivated.", count) % {"count": count},
        )

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "export_csv_url": reverse("register:export-csv"),
            "print_url": reverse("register:print"),
        }
        return super().changelist_view(request, extra_context)


@admin.register(DataCategory)
class DataCategoryAdmin(RegisterAccess, admin.ModelAdmin):
    list_display = ("code", "name", "retention_days", "action", "is_active", "used_by", "last_applied_at")
    list_filter = ("is_active", "action")
    search_fields = ("code", "name")
    fields = ("code", "name", "description", "retention_days", "retention_basis", "action", "is_active")
    readonly_fields = ("last_applied_at",)

    @admin.display(description=gettext_lazy("activities"))
    def used_by(self, obj: DataCategory) -> str:
        return format_html("{}", ", ".join(activity.reference for activity in obj.activities.all()) or "—")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("activities")

    def get_readonly_fields(self, request, obj=None):
        # The code picks the retention handler: fixed once the category exists.
        return ("code",) if obj is not None else ()

    def save_model(self, request, obj, form, change):
        changed = data_category_save(category=obj, actor=Actor(user=request.user))
        if change and "retention_days" in changed:
            messages.info(request, _("The new period applies from the next retention run."))
