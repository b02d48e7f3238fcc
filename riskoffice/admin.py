import csv
from datetime import date

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.db.models import Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from oauth2_provider.models import get_application_model, get_grant_model, get_id_token_model, get_refresh_token_model

from .audit import Actor
from .clients import api_client_update, partner_client_create, scope_choices
from .models import ApiClient, AuditEvent, Partner
from .roles import ADMIN, ALL_ROLES, ANALYST, AUDITOR, SENIOR_ANALYST

# One screen for partner clients (below): the toolkit's own application, grant and token screens would let an
# admin make an application for another grant, or type scopes by hand.
for _model in (get_application_model(), get_grant_model(), get_id_token_model(), get_refresh_token_model()):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ("name", "is_sandbox", "created_at")


def _scopes_field() -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        choices=scope_choices, widget=forms.CheckboxSelectMultiple, help_text=gettext_lazy("What the client may do.")
    )


_ALLOWANCE_HELP = gettext_lazy(
    "Sandbox only: scores allowed over the allowance window. Blank: the default (SANDBOX_ALLOWANCE)."
)
_RATE_HELP = gettext_lazy("Requests a minute. Blank: the default (API_RATE_LIMIT_PER_MINUTE).")
_UNLIMITED_HELP = gettext_lazy("Sandbox only: lift the allowance entirely (a load test, a certification run).")


class ApiClientCreateForm(forms.Form):
    partner_name = forms.CharField(
        max_length=200, help_text=gettext_lazy("A new partner is created; an existing one gets a client.")
    )
    sandbox = forms.BooleanField(
        required=False,
        help_text=gettext_lazy("Sandbox partner: scored on the sandbox sources only, within an allowance."),
    )
    scopes = _scopes_field()
    sandbox_allowance = forms.IntegerField(min_value=0, required=False, help_text=_ALLOWANCE_HELP)
    sandbox_unlimited = forms.BooleanField(required=False, help_text=_UNLIMITED_HELP)
    rate_limit_per_minute = forms.IntegerField(min_value=1, required=False, help_text=_RATE_HELP)


class ApiClientChangeForm(forms.ModelForm):
    scopes = _scopes_field()

    class Meta:
        model = ApiClient
        fields = ["is_active", "sandbox_allowance", "sandbox_unlimited", "rate_limit_per_minute"]
        help_texts = {
            "sandbox_allowance": _ALLOWANCE_HELP,
            "sandbox_unlimited": _UNLIMITED_HELP,
            "rate_limit_per_minute": _RATE_HELP,
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scopes"].initial = list(self.instance.allowed_scopes)
        self.fields["is_active"].help_text = _("Unticking disables the client and revokes the tokens it holds.")


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    """Partner API clients: created in one form (the secret is shown once), changed and disabled here."""

    list_display = ("partner", "client_id", "scopes", "is_active", "mode", "sandbox_allowance", "created_at")
    list_filter = ("is_active", "partner__is_sandbox")
    search_fields = ("partner__name", "application__client_id")
    readonly_fields = ("partner", "client_id")
    form = ApiClientChangeForm
    actions = ["disable"]
    change_list_template = "admin/riskoffice/apiclient/change_list.html"

    @admin.display(description=gettext_lazy("client id"))
    def client_id(self, obj: ApiClient) -> str:
        return obj.application.client_id

    @admin.display(description=gettext_lazy("scopes"))
    def scopes(self, obj: ApiClient) -> str:
        return " ".join(obj.allowed_scopes)

    @admin.display(description=gettext_lazy("mode"))
    def mode(self, obj: ApiClient) -> str:
        return _("sandbox") if obj.partner.is_sandbox else _("live")

    def get_fields(self, request, obj=None):
        return [
            "partner",
            "client_id",
            "scopes",
            "is_active",
            "sandbox_allowance",
            "sandbox_unlimited",
            "rate_limit_per_minute",
        ]

    def has_delete_permission(self, request, obj=None):
        return False  # dossiers and audit rows point at clients: disable instead

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        revoked = api_client_update(
            api_client=obj,
            scopes=data["scopes"],
            is_active=data["is_active"],
            sandbox_allowance=data["sandbox_allowance"],
            sandbox_unlimited=data["sandbox_unlimited"],
            rate_limit_per_minute=data["rate_limit_per_minute"],
            actor=Actor(user=request.user),
        )
        obj.refresh_from_db()
        if revoked:
            messages.info(
                request,
                ngettext(
                    "%(count)d token of this client was revoked.",
                    "%(count)d tokens of this client were revoked.",
                    revoked,
                )
                % {"count": revoked},
            )

    @admin.action(description=gettext_lazy("Disable the selected clients (revokes their tokens)"))
    def disable(self, request, queryset):
        revoked = 0
        for client in queryset:
            revoked += api_client_update(
                api_client=client,
                scopes=client.allowed_scopes,
                is_active=False,
                sandbox_allowance=client.sandbox_allowance,
                sandbox_unlimited=client.sandbox_unlimited,
                rate_limit_per_minute=client.rate_limit_per_minute,
                actor=Actor(user=request.user),
            )
        messages.info(
            request,
            _("%(clients)d client(s) disabled, %(tokens)d token(s) revoked.")
            % {"clients": queryset.count(), "tokens": revoked},
        )

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ApiClientCreateForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                new = partner_client_create(
                    partner_name=data["partner_name"],
                    scopes=data["scopes"],
                    sandbox=data["sandbox"],
                    sandbox_allowance=data["sandbox_allowance"],
                    sandbox_unlimited=data["sandbox_unlimited"],
                    rate_limit_per_minute=data["rate_limit_per_minute"],
                    actor=Actor(user=request.user),
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                context = {**self.admin_site.each_context(request), "new": new, "opts": self.model._meta}
                response = TemplateResponse(request, "admin/riskoffice/apiclient/created.html", context)
                response["Cache-Control"] = "no-store"  # the secret must not stay in any cache
                return response
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "opts": self.model._meta,
            "title": _("Add a partner API client"),
        }
        return TemplateResponse(request, "admin/riskoffice/apiclient/add.html", context)

    def get_urls(self):
        usage = path("usage/", self.admin_site.admin_view(self.usage_view), name="riskoffice_apiclient_usage")
        return [usage, *super().get_urls()]

    def usage_view(self, request: HttpRequest) -> HttpResponse:
        """Monthly usage per client (billable scores), as a table or as CSV (?format=csv)."""
        from dossiers.usage import USAGE_CSV_COLUMNS, monthly_usage, usage_csv_row

        if not self.has_view_permission(request):
            raise PermissionDenied
        today = timezone.localdate()
        first, last, error = _month_range(request.GET.get("from", ""), request.GET.get("to", ""), today)
        rows = monthly_usage(first, last)
        if request.GET.get("format") == "csv" and not error:
            response = HttpResponse(content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="usage-{first:%Y-%m}-{last:%Y-%m}.csv"'
            writer = csv.writer(response)
            writer.writerow(USAGE_CSV_COLUMNS)
            writer.writerows(usage_csv_row(row) for row in rows)
            return response
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("API usage by month"),
            "rows": rows,
            "first": first,
            "last": last,
            "error": error,
            "csv_url": f"{reverse('admin:riskoffice_apiclient_usage')}?from={first:%Y-%m}&to={last:%Y-%m}&format=csv",
        }
        return TemplateResponse(request, "admin/riskoffice/apiclient/usage.html", context, status=400 if error else 200)


def _parse_month(value: str) -> date:
    year, month = value.split("-")
    return date(int(year), int(month), 1)


def _month_range(first: str, last: str, today: date) -> tuple[date, date, str]:
    """The months asked for (YYYY-MM), by default the last twelve; an error message when unreadable."""
    default_last = today.replace(day=1)
    months = default_last.year * 12 + default_last.month - 1 - 11
    default_first = date(months // 12, months % 12 + 1, 1)
    try:
        start = _parse_month(first) if first else default_first
        end = _parse_month(last) if last else default_last
    except ValueError:
        return default_first, default_last, _("Give months as YYYY-MM, e.g. 2026-01.")
    if start > end:
        return default_first, default_last, _("The first month comes after the last.")
    return start, end, ""


class IndexedValuesFilter(admin.SimpleListFilter):
    """A column's distinct values read by hopping along an index that leads with it: one probe per value.

    Django's own filter runs ``SELECT DISTINCT column`` over the whole table on every view of the list
    (150 ms on 450k audit rows, docs/benchmarks.md); this costs a fraction of a millisecond. Use it only
    on a column an index starts with: without one, each hop is a scan of its own.
    """

    column = ""

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        # Quoted identifiers from the model and the class, never from the request; the ORM has no recursive CTE.
        table = connection.ops.quote_name(model_admin.model._meta.db_table)
        column = connection.ops.quote_name(self.column)
        hop = f"SELECT MIN({column}) FROM {table}"  # noqa: S608
        sql = (
            f"WITH RECURSIVE hops(value) AS ({hop} UNION ALL "  # noqa: S608
            f"SELECT ({hop} WHERE {column} > hops.value) FROM hops WHERE hops.value IS NOT NULL) "
            "SELECT value FROM hops WHERE value IS NOT NULL"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return [(value, value) for (value,) in cursor.fetchall()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(**{self.column: self.value()}) if self.value() else queryset


class AuditObjectTypeFilter(IndexedValuesFilter):
    title = gettext_lazy("object type")
    parameter_name = column = "object_type"  # audit_object_idx starts with it


class AuditActionFilter(IndexedValuesFilter):
    title = gettext_lazy("action")
    parameter_name = column = "action"  # audit_action_idx starts with it


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the audit trail is written by services, never edited."""

    list_display = ("at", "actor_label", "action", "object_type", "object_id")
    # actor_label names the user or the client (its partner and application): joined, not fetched per row.
    list_select_related = ("actor_user", "actor_client__partner", "actor_client__application")
    list_filter = (AuditActionFilter, AuditObjectTypeFilter)
    # The trail only grows: count it once per view (the filtered count), not a second time unfiltered.
    show_full_result_count = False
    search_fields = ("object_id", "action")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- users and their roles ------------------------------------------------------------------------------

ROLE_LABELS = {
    ANALYST: gettext_lazy("analyst"),
    SENIOR_ANALYST: gettext_lazy("senior analyst"),
    ADMIN: gettext_lazy("admin"),
    AUDITOR: gettext_lazy("auditor"),
}
NO_ROLE = "none"


class RoleFilter(admin.SimpleListFilter):
    """Users by back-office role: the role groups, a superuser counting as an admin (riskoffice.roles)."""

    title = gettext_lazy("role")
    parameter_name = "role"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [*((role, ROLE_LABELS[role]) for role in ALL_ROLES), (NO_ROLE, _("no role"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == ADMIN:
            return queryset.filter(Q(groups__name=ADMIN) | Q(is_superuser=True)).distinct()
        if value in ALL_ROLES:
            return queryset.filter(groups__name=value)
        if value == NO_ROLE:
            return queryset.filter(is_superuser=False).exclude(groups__name__in=ALL_ROLES)
        return queryset


if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Django's user screens, with the back-office roles shown in the list, filtered on, and given as groups."""

    list_display = ("username", "email", "first_name", "last_name", "roles", "is_staff", "is_active")
    list_filter = (RoleFilter, "is_staff", "is_superuser", "is_active")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # The roles column reads each user's role groups: fetched for the whole page in one query.
        role_groups = Group.objects.filter(name__in=ALL_ROLES).order_by("name")
        return super().get_queryset(request).prefetch_related(Prefetch("groups", queryset=role_groups))

    @admin.display(description=gettext_lazy("roles"))
    def roles(self, obj: User) -> str:
        names = [str(ROLE_LABELS[group.name]) for group in obj.groups.all()]
        if obj.is_superuser and ADMIN not in {group.name for group in obj.groups.all()}:
            names.append(_("admin (superuser)"))
        return ", ".join(names) or "—"

    def formfield_for_manytomany(self, db_field, request: HttpRequest, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.name == "groups":
            field.help_text = _(
                "Roles are groups: %(roles)s. A superuser is an admin whatever its groups; "
                "deciding on dossiers takes the analyst or senior analyst group."
            ) % {"roles": ", ".join(ALL_ROLES)}
        return field
