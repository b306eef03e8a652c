from __future__ import annotations

from django import forms
from django.contrib.auth.models import AbstractBaseUser
from django.core.validators import validate_email
from django.http import HttpRequest

from gateway.hotpath.forward import MAX_ATTEMPTS_CAP
from keys.forms import DB_INT_MAX, SpendPolicyForm

from .models import Workspace
from .services import workspace_create

CACHE_MAX_MB_DEFAULT = Workspace._meta.get_field("cache_max_mb").default


class SignupForm(forms.Form):
    """Extra sign-up field: the new user's first workspace (allauth's SIGNUP_FORM_CLASS)."""

    workspace_name = forms.CharField(max_length=100, label="Workspace name", help_text="Your team or project.")

    def signup(self, request: HttpRequest, user: AbstractBaseUser) -> None:
        workspace = workspace_create(name=self.cleaned_data["workspace_name"], owner=user)
        request.session["workspace_id"] = workspace.pk


class WorkspaceForm(forms.Form):
    name = forms.CharField(max_length=100, label="Workspace name")


class InvitationForm(forms.Form):
    email = forms.EmailField(label="Email", help_text="They get a link to accept; they sign up first if they are new.")
    role = forms.ChoiceField(choices=[("member", "Member"), ("admin", "Admin"), ("owner", "Owner")])


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=[("member", "Member"), ("admin", "Admin"), ("owner", "Owner")])


class AdminTokenForm(forms.Form):
    name = forms.CharField(max_length=100)


class WorkspaceSettingsForm(SpendPolicyForm):
    """The workspace's own limits and budget, who gets budget alerts, its response cache and
    its routing bounds (the page shows them under their own heading, from ROUTING_FIELDS on)."""

    ROUTING_FIELDS = ("routing_max_attempts", "routing_overrides")

    budget_alert_recipients = forms.CharField(
        label="Extra alert recipients", required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One email per line. Owners and admins always get budget alerts.",
    )
    limits_fail_open = forms.BooleanField(
        label="Serve requests without limits when the limits store (Redis) is unavailable", required=False,
        help_text="Off (default): keys with a hard budget are refused until it is back.",
    )

    cache_enabled = forms.BooleanField(label="Answer repeated requests from the response cache", required=False)
    cache_ttl_seconds = forms.IntegerField(label="Cache lifetime (seconds)", min_value=1, max_value=30 * 86400, initial=3600)
    cache_scope = forms.ChoiceField(label="Cache scope", choices=[("workspace", "Shared by the workspace's keys"),
                                                                 ("key", "Per key")])
    cache_nondeterministic = forms.BooleanField(
        label="Also cache requests with temperature above 0 (or omitted) or with tools", required=False)
    cache_semantic = forms.BooleanField(
        label="Also answer prompts that mean the same as a cached one (semantic cache)", required=False)
    cache_semantic_threshold = forms.FloatField(
        label="Semantic match threshold", min_value=0.5, max_value=1.0, required=False,
        help_text="Cosine similarity from 0.5 to 1.0 a cached prompt needs; higher is stricter. Empty: the default.")
    cache_max_mb = forms.IntegerField(
        label="Cache size cap (MB)", min_value=1, max_value=1_000_000, required=False,
        help_text="For the exact and the semantic cache each; above it, the oldest answers are evicted every few "
                  f"minutes. Empty: {CACHE_MAX_MB_DEFAULT} MB.")

    routing_max_attempts = forms.IntegerField(
        label="Most attempts per request", min_value=1, max_value=MAX_ATTEMPTS_CAP, required=False,
        help_text="Tries of one request over its model group's deployments and fallbacks, whatever the group or "
                  f"the request's x-aiproxy-max-attempts header asks for. Empty: {MAX_ATTEMPTS_CAP}, no bound of "
                  "the workspace's own.")
    routing_overrides = forms.BooleanField(
        label="Let requests choose their fallbacks and attempts", required=False,
        help_text="With the x-aiproxy-fallbacks and x-aiproxy-max-attempts headers. Off: a request sending them is "
                  "refused (400). x-aiproxy-timeout is always allowed, as it can only shorten timeouts.")

    def clean_cache_max_mb(self) -> int:
        return self.cleaned_data["cache_max_mb"] or CACHE_MAX_MB_DEFAULT

    def clean_routing_max_attempts(self) -> int:
        return self.cleaned_data["routing_max_attempts"] or MAX_ATTEMPTS_CAP

    def clean_budget_alert_recipients(self) -> str:
        emails = [line.strip() for line in self.cleaned_data["budget_alert_recipients"].replace(",", "\n").splitlines()
                  if line.strip()]
        for email in emails:
            try:
                validate_email(email)
            except forms.ValidationError as exc:
                raise forms.ValidationError(f"'{email}' is not an email address.") from exc
        return "\n".join(emails)


class MemberLimitsForm(forms.Form):
    rpm_limit = forms.IntegerField(min_value=1, max_value=DB_INT_MAX, required=False)
    tpm_limit = forms.IntegerField(min_value=1, max_value=DB_INT_MAX, required=False)

