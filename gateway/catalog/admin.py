import threading
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from ..hotpath.bounds import BOUND_NAMES, DEFAULT_BOUNDS
from .health import deployment_health_read
from .models import (
    Deployment,
    GlobalLimits,
    Model,
    ModelFallback,
    Provider,
    deployment_name_default,
    fallback_edges,
    group_reaches,
)


class ProviderForm(forms.ModelForm):
    credential = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="API key for this provider. Stored encrypted; leave empty to keep the current one.",
    )
    clear_credential = forms.BooleanField(required=False, help_text="Remove the stored credential.")

    class Meta:
        model = Provider
        fields = ["name", "kind", "base_url", "api_version", "enabled", "rpm_limit", "tpm_limit"]

    def save(self, commit: bool = True) -> Provider:
        provider = super().save(commit=False)
        if self.cleaned_data.get("clear_credential"):
            provider.set_credential("")
        elif self.cleaned_data.get("credential"):
            provider.set_credential(self.cleaned_data["credential"])
        if commit:
            provider.save()
        return provider


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    form = ProviderForm
    list_display = ["name", "kind", "base_url", "enabled", "has_credential", "rpm_limit", "tpm_limit"]
    list_filter = ["kind", "enabled"]

    @admin.display(boolean=True, description="credential set")
    def has_credential(self, obj: Provider) -> bool:
        return obj.has_credential


class CatalogModelForm(forms.ModelForm):
    """A request bound left empty is its default; one left out of the submitted form keeps
    its current value."""

    class Meta:
        model = Model
        fields = "__all__"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in BOUND_NAMES:
            if name in self.fields:
                self.fields[name].required = False
                self.fields[name].help_text += f" Empty: {getattr(DEFAULT_BOUNDS, name):,}."

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name in BOUND_NAMES:
            if name in self.fields and data.get(name) is None and self.add_prefix(name) in self.data:
                data[name] = getattr(DEFAULT_BOUNDS, name)
        return data


class DeploymentFormSet(forms.BaseInlineFormSet):
    """Names left empty are filled here, from the provider's name made unique in the group,
    so two new deployments on one provider are not refused as duplicates."""

    def clean(self) -> None:
        kept = [f for f in self.forms if f.has_changed() or f.instance.pk]
        kept = [f for f in kept if hasattr(f, "cleaned_data") and not self._should_delete_form(f)]
        taken = {f.cleaned_data["name"] for f in kept if f.cleaned_data.get("name")}
        for form in kept:
            provider = form.cleaned_data.get("provider")
            if not form.cleaned_data.get("name") and provider is not None:
                name = deployment_name_default(provider.name, taken)
                form.cleaned_data["name"] = form.instance.name = name
                taken.add(name)
        super().clean()


class DeploymentInline(admin.TabularInline):
    model = Deployment
    formset = DeploymentFormSet
    fk_name = "group"
    extra = 1
    fields = ["provider", "upstream_name", "name", "weight", "priority", "input_price_per_mtok",
              "output_price_per_mtok", "rpm_limit", "tpm_limit", "max_in_flight", "connect_timeout",
              "first_byte_timeout", "total_timeout", "enabled", "health_check", "health"]
    readonly_fields = ["health"]

    @admin.display(description="health (live)")
    def health(self, obj: Deployment) -> str:
        return health_summary(deployment_health_read([obj.pk]).get(obj.pk)) if obj.pk else "-"


class FallbackFormSet(forms.BaseInlineFormSet):
    """The chain may not lead back to its own group, directly or through the chains of the
    groups it names (saved ones, with this group's as submitted)."""

    def clean(self) -> None:
        super().clean()
        group = self.instance
        chosen = [f.cleaned_data["fallback"] for f in self.forms
                  if getattr(f, "cleaned_data", None) and f.cleaned_data.get("fallback")
                  and not self._should_delete_form(f)]
        if group.pk is None:
            return  # a new group: nothing falls back to it yet
        if any(target.pk == group.pk for target in chosen):
            raise forms.ValidationError("A group cannot fall back to itself.")
        edges = fallback_edges("fallbacks", group.pk, [target.pk for target in chosen])
        for target in chosen:
            if group_reaches(target.pk, group.pk, edges):
                raise forms.ValidationError(f"{target}'s fallbacks lead back to {group}: that would be a loop.")


class FallbackInline(admin.TabularInline):
    model = ModelFallback
    formset = FallbackFormSet
    fk_name = "model"
    extra = 0
    fields = ["position", "fallback"]
    ordering = ["position", "pk"]
    verbose_name = "fallback"
    verbose_name_plural = "fallback chain (tried in position order once every deployment failed)"


@admin.register(Model)
class ModelAdmin(admin.ModelAdmin):
    form = CatalogModelForm
    inlines = [DeploymentInline, FallbackInline]
    list_display = ["public_name", "deployment_count", "strategy", "context_window", "rpm_limit", "tpm_limit", "enabled"]
    list_filter = ["strategy", "enabled"]
    search_fields = ["public_name", "deployments__upstream_name"]
    filter_horizontal = ["workspaces"]
    fieldsets = [
        (None, {"fields": ["public_name", "context_window", "enabled", "workspaces"]}),
        ("Routing", {
            "description": "How a request picks a deployment, and where it goes when the group's deployments fail.",
            "fields": ["strategy", "max_attempts", "retry_deadline_seconds", "context_window_fallback",
                       "content_policy_fallback"],
        }),
        ("Rate limits", {"description": "Over the whole group; each deployment may have its own too.",
                         "fields": ["rpm_limit", "tpm_limit"]}),
        ("Request bounds", {
            "description": "The largest sizes one request to this model may ask for, under whichever name the "
            "client's API gives them. A request over a bound is refused with a 400 naming the parameter and the "
            "limit, before anything reaches the upstream.",
            "fields": list(BOUND_NAMES),
        }),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Model]:
        # distinct: a search by upstream name joins the deployments once more
        return super().get_queryset(request).annotate(deployments_total=Count("deployments", distinct=True))

    @admin.display(description="deployments", ordering="deployments_total")
    def deployment_count(self, obj: Model) -> int:
        return obj.deployments_total  # type: ignore[attr-defined, no-any-return]


def health_summary(health: dict[str, Any] | None) -> str:
    """A deployment's shared health in one line: its circuit, latencies, load and last error."""
    if not health:
        return "no traffic yet"
    parts = [{"closed": "up", "open": "DOWN (circuit open)", "half_open": "probing"}.get(health["state"], health["state"])]
    if health.get("ttfb_ms") is not None:
        parts.append(f"first byte {health['ttfb_ms']:.0f} ms")
    if health.get("total_ms") is not None:
        parts.append(f"total {health['total_ms']:.0f} ms")
    parts.append(f"{health.get('in_flight') or 0} in flight")
    if health.get("last_error"):
        parts.append(f"last error: {health['last_error']}")
    return " · ".join(parts)


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ["name", "group", "provider", "upstream_name", "weight", "priority", "input_price_per_mtok",
                    "output_price_per_mtok", "max_in_flight", "enabled", "health_check", "state", "latency",
                    "last_error"]
    list_filter = ["provider", "group", "enabled"]
    list_select_related = ["group", "provider"]
    search_fields = ["name", "upstream_name", "group__public_name"]
    readonly_fields = ["state", "latency", "last_error"]
    _page = threading.local()

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        # the page's deployments' health in one Redis round trip, not one per column and row (kept
        # per thread: the admin is one object serving every request)
        self._page.health = deployment_health_read(d.pk for d in changelist.result_list)
        return changelist

    def _health_of(self, obj: Deployment) -> dict[str, Any]:
        cached = getattr(self._page, "health", None) or {}
        if obj.pk not in cached:
            cached = deployment_health_read([obj.pk])
        return cached.get(obj.pk) or {}

    @admin.display(description="circuit")
    def state(self, obj: Deployment) -> str:
        return {"closed": "up", "open": "DOWN", "half_open": "probing"}.get(self._health_of(obj).get("state", ""), "up")

    @admin.display(description="first byte / total (ms, moving average)")
    def latency(self, obj: Deployment) -> str:
        health = self._health_of(obj)
        ttfb, total = health.get("ttfb_ms"), health.get("total_ms")
        return "-" if ttfb is None and total is None else f"{ttfb or 0:.0f} / {total or 0:.0f}"

    @admin.display(description="last error")
    def last_error(self, obj: Deployment) -> str:
        return self._health_of(obj).get("last_error") or "-"


@admin.register(GlobalLimits)
class GlobalLimitsAdmin(admin.ModelAdmin):
    """One row: limits over every request the gateway serves (protects the gateway and, with
    per-provider limits, the upstream accounts' quotas)."""

    list_display = ["__str__", "rpm_limit", "tpm_limit"]

    def has_add_permission(self, request: Any) -> bool:
        return not GlobalLimits.objects.exists()

