from typing import Any

from django import forms
from django.contrib import admin

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


@admin.register(Model)
class ModelAdmin(admin.ModelAdmin):
    list_display = ["public_name", "provider", "upstream_name", "input_price_per_mtok", "output_price_per_mtok",
                    "context_window", "rpm_limit", "tpm_limit", "enabled"]
    list_filter = ["provider", "enabled"]
    search_fields = ["public_name", "upstream_name"]
    filter_horizontal = ["workspaces"]


@admin.register(GlobalLimits)
class GlobalLimitsAdmin(admin.ModelAdmin):
    """One row: limits over every request the gateway serves (protects the gateway and, with
    per-provider limits, the upstream accounts' quotas)."""

    list_display = ["__str__", "rpm_limit", "tpm_limit"]

    def has_add_permission(self, request: Any) -> bool:
        return not GlobalLimits.objects.exists()

