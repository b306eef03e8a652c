from typing import Any

from django import forms
from django.contrib import admin

from ..hotpath.bounds import BOUND_NAMES, DEFAULT_BOUNDS
from .models import GlobalLimits, Model, Provider


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


@admin.register(Model)
class ModelAdmin(admin.ModelAdmin):
    form = CatalogModelForm
    list_display = ["public_name", "provider", "upstream_name", "input_price_per_mtok", "output_price_per_mtok",
                    "context_window", "rpm_limit", "tpm_limit", "enabled"]
    list_filter = ["provider", "enabled"]
    search_fields = ["public_name", "upstream_name"]
    filter_horizontal = ["workspaces"]
    fieldsets = [
        (None, {"fields": ["public_name", "provider", "upstream_name", "input_price_per_mtok", "output_price_per_mtok",
                           "context_window", "enabled", "workspaces"]}),
        ("Rate limits", {"fields": ["rpm_limit", "tpm_limit"]}),
        ("Request bounds", {
            "description": "The largest sizes one request to this model may ask for, under whichever name the "
            "client's API gives them. A request over a bound is refused with a 400 naming the parameter and the "
            "limit, before anything reaches the upstream.",
            "fields": list(BOUND_NAMES),
        }),
    ]


@admin.register(GlobalLimits)
class GlobalLimitsAdmin(admin.ModelAdmin):
    """One row: limits over every request the gateway serves (protects the gateway and, with
    per-provider limits, the upstream accounts' quotas)."""

    list_display = ["__str__", "rpm_limit", "tpm_limit"]

    def has_add_permission(self, request: Any) -> bool:
        return not GlobalLimits.objects.exists()

