from decimal import Decimal
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError

from billing.money import USD_PLACES, usd_plain

DB_INT_MAX = 2_147_483_647  # an integer column's range in PostgreSQL; above it the save would fail


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, label="Key name", help_text="e.g. the app or teammate that will use it.")


class KeyModelsForm(forms.Form):
    """Which models a key may call: all (the default) or the ticked ones. Offers the models the
    workspace can use (`offered`) and any name the key already has (`kept`), so a model renamed or
    deleted since shows up, marked, instead of silently leaving the list and widening the key."""

    # not required: a post without it (a script, an older page) leaves the key's models as they are
    model_scope = forms.ChoiceField(
        label="Models", choices=[("all", "All models"), ("some", "Only the models ticked below")],
        widget=forms.RadioSelect, initial="all", required=False,
    )
    allowed_models = forms.MultipleChoiceField(
        label="Allowed models", required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Requests for any other model get a 404, as for an unknown model, and /v1/models lists only "
        "these. The list holds names: after a model is renamed, tick its new name; a deleted one matches nothing.",
    )

    def __init__(self, *args: Any, offered: list[str], kept: list[str] | None = None, **kwargs: Any) -> None:
        kept = sorted(kept or [])
        kwargs.setdefault("initial", {"model_scope": "some" if kept else "all", "allowed_models": kept})
        super().__init__(*args, **kwargs)
        gone = [(name, f"{name} (no longer offered)") for name in kept if name not in set(offered)]
        cast(forms.MultipleChoiceField, self.fields["allowed_models"]).choices = [(n, n) for n in offered] + gone

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("model_scope") == "all":
            cleaned["allowed_models"] = []
        elif cleaned.get("model_scope") == "some" and not cleaned.get("allowed_models"):
            self.add_error("allowed_models", "Tick at least one model, or choose All models.")
        return cleaned

    def models_chosen(self) -> dict[str, list[str]]:
        """`allowed_models` for the services, or nothing when the post did not choose."""
        return {"allowed_models": self.cleaned_data["allowed_models"]} if self.cleaned_data.get("model_scope") else {}


class ThresholdsField(forms.CharField):
    """Alert thresholds typed as "50, 80, 100"."""

    def prepare_value(self, value: object) -> object:
        return ", ".join(str(v) for v in value) if isinstance(value, list) else value

    def to_python(self, value: object) -> list[int]:
        text = str(value or "").strip()
        if not text:
            return []
        try:
            numbers = sorted({int(part) for part in text.replace(";", ",").split(",") if part.strip()})
        except ValueError as exc:
            raise forms.ValidationError("Whole percentages separated by commas, e.g. 50, 80, 100.") from exc
        if any(not 1 <= n <= 1000 for n in numbers):
            raise forms.ValidationError("Each threshold is a percentage from 1 to 1000.")
        return numbers


class UsdField(forms.DecimalField):
    """An amount in USD to the 1e-8 costs are kept in, shown without trailing zeros."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=0, max_digits=18, decimal_places=USD_PLACES, **kwargs)

    def prepare_value(self, value: object) -> object:
        return usd_plain(value) if isinstance(value, Decimal) else value


class SpendPolicyForm(forms.Form):
    """Rate limits and a budget (a key's or the workspace's)."""

    rpm_limit = forms.IntegerField(label="Requests per minute", min_value=1, max_value=DB_INT_MAX, required=False,
                                   help_text="Empty: no limit.")
    tpm_limit = forms.IntegerField(label="Tokens per minute", min_value=1, max_value=DB_INT_MAX, required=False,
                                   help_text="Empty: no limit.")
    budget_amount = UsdField(label="Budget (USD)", required=False,
                             help_text="Empty: no budget. Sub-cent amounts are fine, e.g. 0.0005.")
    budget_period = forms.ChoiceField(label="Budget period", choices=[("daily", "Daily"), ("weekly", "Weekly"),
                                                                     ("monthly", "Monthly"), ("lifetime", "Lifetime")])
    budget_hard = forms.BooleanField(label="Hard limit (refuse requests that could pass the budget)", required=False)
    budget_alert_thresholds = ThresholdsField(label="Alert at (% of budget)", required=False, initial="50, 80, 100")


class InheritSelect(forms.NullBooleanSelect):
    """On, off, or empty: the workspace's setting."""

    def __init__(self, attrs: dict[str, str] | None = None) -> None:
        super().__init__(attrs)
        self.choices = [("unknown", "As the workspace"), ("true", "On"), ("false", "Off")]


class ApiKeySettingsForm(SpendPolicyForm):
    """A key's limits and budget, and where it differs from the workspace, its response cache."""

    cache_enabled = forms.NullBooleanField(label="Response cache", widget=InheritSelect, required=False)
    cache_semantic = forms.NullBooleanField(label="Semantic cache", widget=InheritSelect, required=False)
    cache_semantic_threshold = forms.FloatField(
        label="Semantic match threshold", min_value=0.5, max_value=1.0, required=False,
        help_text="Cosine similarity from 0.5 to 1.0. Empty: as the workspace.")
    cache_ttl_seconds = forms.IntegerField(label="Cache lifetime (seconds)", min_value=1, max_value=30 * 86400,
                                           required=False, help_text="Empty: as the workspace.")


def form_errors_add(form: forms.Form, error: ValidationError, *others: forms.Form) -> None:
    """Show a model's validation error (raised by a service's full_clean) on the fields it names, of
    `form` or of the `others` shown with it, the rest above `form`, so a value the forms let through
    re-renders the page, not a 500."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.error_dict.items():
        owner = next((f for f in (form, *others) if field in f.fields), None)
        if owner is None:
            form.add_error(None, errors)
        else:
            owner.add_error(field, errors)
