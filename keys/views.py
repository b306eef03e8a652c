from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from analytics.selectors import cache_savings
from tenants.decorators import workspace_required

from .forms import ApiKeyForm, ApiKeySettingsForm, KeyModelsForm, form_errors_add
from .models import ApiKey
from .selectors import (
    KeyAction,
    api_key_denial,
    api_keys_manageable_ids,
    key_actor,
    key_spend_by_day,
    key_spend_this_period,
    model_names_offered,
    period_start,
)
from .services import (
    api_key_create,
    api_key_get,
    api_key_policy_update,
    api_key_rename,
    api_key_revoke,
    api_keys_list,
    key_cache_policy,
)

NEW_SECRET_SESSION_KEY = "new_api_key_secret"


def _key_or_404(request: HttpRequest, key_id: int) -> ApiKey:
    key = api_key_get(workspace=request.workspace, key_id=key_id)
    if key is None:
        raise Http404("No such key in this workspace.")
    return key


def _denial(request: HttpRequest, key: ApiKey, action: KeyAction) -> str | None:
    return api_key_denial(actor=key_actor(membership=request.membership), key=key, action=action)


@login_required
@workspace_required
def key_list(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST or None)
    models_form = KeyModelsForm(request.POST or None, offered=model_names_offered(workspace=request.workspace))
    if request.method == "POST" and all([form.is_valid(), models_form.is_valid()]):
        try:
            _, secret = api_key_create(workspace=request.workspace, name=form.cleaned_data["name"],
                                       created_by_id=request.user.pk, **models_form.models_chosen())
        except ValidationError as exc:  # a model disabled between showing the page and sending it
            form_errors_add(form, exc, models_form)
        else:
            # Post/redirect/get: the secret is shown on the next page view only, never on a reload.
            request.session[NEW_SECRET_SESSION_KEY] = secret
            return redirect("keys:list")
    new_secret = request.session.pop(NEW_SECRET_SESSION_KEY, None)
    keys = api_keys_list(workspace=request.workspace)
    manageable = api_keys_manageable_ids(actor=key_actor(membership=request.membership), keys=keys)
    creator_ids = {k.created_by_id for k in keys if k.created_by_id}
    creators = dict(get_user_model().objects.filter(pk__in=creator_ids).values_list("pk", "email"))
    for key in keys:
        key.can_manage = key.pk in manageable  # type: ignore[attr-defined]
        key.creator_email = creators.get(key.created_by_id, "")  # type: ignore[attr-defined]
    return render(request, "keys/list.html", {"keys": keys, "form": form, "models_form": models_form,
                                              "new_secret": new_secret})


@login_required
@workspace_required
@require_POST
def key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    key = _key_or_404(request, key_id)
    if denial := _denial(request, key, "revoke"):
        return HttpResponse(denial, status=403)
    api_key_revoke(workspace=request.workspace, key=key)
    messages.success(request, f"Key “{key.name}” revoked. It stops working within a second.")
    return redirect("keys:list")


@login_required
@workspace_required
@require_POST
def key_rename(request: HttpRequest, key_id: int) -> HttpResponse:
    key = _key_or_404(request, key_id)
    if denial := _denial(request, key, "rename"):
        return HttpResponse(denial, status=403)
    form = ApiKeyForm(request.POST)
    if form.is_valid():
        api_key_rename(workspace=request.workspace, key=key, name=form.cleaned_data["name"])
        messages.success(request, f"Key renamed to “{form.cleaned_data['name']}”.")
    else:
        messages.error(request, "A key name is required (at most 100 characters).")
    return redirect("keys:list")


@login_required
@workspace_required
def key_detail(request: HttpRequest, key_id: int) -> HttpResponse:
    """A key's limits, budget, cache settings, models, spend this period, spend by day and what the
    cache saved; admins edit the limits, cache settings and models."""
    key = _key_or_404(request, key_id)
    denial = _denial(request, key, "policy")
    can_edit = denial is None
    initial = {name: getattr(key, name) for name in ApiKeySettingsForm.base_fields}
    form = ApiKeySettingsForm(request.POST or None, initial=initial)
    offered = model_names_offered(workspace=request.workspace)
    models_form = KeyModelsForm(request.POST or None, offered=offered, kept=key.allowed_models)
    if request.method == "POST":
        if denial:
            messages.error(request, denial)
            return redirect("keys:detail", key_id=key.pk)
        if all([form.is_valid(), models_form.is_valid()]):
            try:
                api_key_policy_update(workspace=request.workspace, key=key, **form.cleaned_data,
                                      **models_form.models_chosen())
            except ValidationError as exc:
                form_errors_add(form, exc, models_form)
                key.refresh_from_db()
            else:
                messages.success(request, "Settings saved. Every gateway process applies them within a second.")
                return redirect("keys:detail", key_id=key.pk)
    days = key_spend_by_day(workspace=request.workspace, key=key)
    peak = max((Decimal(str(d["cost"])) for d in days), default=Decimal("0")) or Decimal("1")
    for day in days:
        day["height"] = int(Decimal(100) * day["cost"] / peak)  # type: ignore[operator]
    spent = key_spend_this_period(workspace=request.workspace, key=key)
    used = int(Decimal(100) * spent / key.budget_amount) if key.budget_amount else None
    savings = cache_savings(workspace=request.workspace, since=datetime.now(UTC) - timedelta(days=len(days)), key_id=key.pk)
    return render(request, "keys/detail.html", {
        "key": key, "form": form, "models_form": models_form, "can_edit": can_edit, "days": days,
        "models_gone": sorted(set(key.allowed_models) - set(offered)), "spent": spent, "used_percent": used,
        "period_start": period_start(key.budget_period), "cache": key_cache_policy(request.workspace, key),
        "savings": savings["total"], "savings_by_model": savings["by_model"],
    })

