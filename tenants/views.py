from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from redis.exceptions import RedisError

from analytics.models import UsageEvent
from billing.models import Plan
from cache.selectors import cache_summary
from cache.services import cache_clear
from keys.models import ApiKey

from .decorators import workspace_admin_required, workspace_required
from .forms import AdminTokenForm, MemberAddForm, MemberLimitsForm, WorkspaceForm, WorkspaceSettingsForm
from .middleware import SESSION_KEY
from .models import AdminToken, Membership
from .services import (
    admin_token_create,
    admin_token_revoke,
    member_add,
    member_limits_update,
    membership_get,
    workspace_create,
    workspace_policy_update,
)


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return render(request, "tenants/landing.html")
    if request.workspace is None:
        return redirect("tenants:workspace_new")
    return dashboard(request)


@login_required
@workspace_required
def dashboard(request: HttpRequest) -> HttpResponse:
    totals = UsageEvent.objects.aggregate(
        requests=Count("id"), input_tokens=Sum("input_tokens"), output_tokens=Sum("output_tokens"), cost=Sum("cost")
    )
    context = {
        "totals": totals,
        "active_keys": ApiKey.objects.filter(revoked_at__isnull=True).count(),
        "recent": UsageEvent.objects.all()[:10],
    }
    return render(request, "tenants/dashboard.html", context)


@login_required
def workspace_new(request: HttpRequest) -> HttpResponse:
    form = WorkspaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        workspace = workspace_create(name=form.cleaned_data["name"], owner=request.user)
        request.session[SESSION_KEY] = workspace.pk
        messages.success(request, f"Workspace “{workspace.name}” created.")
        return redirect("home")
    return render(request, "tenants/workspace_new.html", {"form": form})


@login_required
@require_POST
def workspace_switch(request: HttpRequest, workspace_id: int) -> HttpResponse:
    membership = membership_get(user=request.user, workspace_id=workspace_id)
    if membership is None:
        raise Http404("No such workspace.")
    request.session[SESSION_KEY] = membership.workspace_id
    return redirect("home")


@login_required
@workspace_required
def members(request: HttpRequest) -> HttpResponse:
    form = MemberAddForm(request.POST or None)
    if request.method == "POST":
        if not request.membership or not request.membership.is_admin:
            return HttpResponse("Only the workspace's owners and admins can add members.", status=403)
        if form.is_valid():
            user = get_user_model().objects.filter(email__iexact=form.cleaned_data["email"]).first()
            if user is None:
                form.add_error("email", "No user with this email has signed up yet.")
            else:
                member_add(workspace=request.workspace, user=user, role=form.cleaned_data["role"])
                messages.success(request, f"{user.email} added.")
                return redirect("tenants:members")
    memberships = Membership.objects.select_related("user").filter(workspace=request.workspace).order_by("created_at")
    return render(request, "tenants/members.html", {"memberships": memberships, "form": form})


@login_required
@workspace_required
@workspace_admin_required
def admin_tokens(request: HttpRequest) -> HttpResponse:
    form = AdminTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        _, secret = admin_token_create(workspace=request.workspace, name=form.cleaned_data["name"], created_by=request.user)
        request.session["new_admin_token"] = secret
        return redirect("tenants:admin_tokens")
    new_secret = request.session.pop("new_admin_token", None)
    tokens = AdminToken.objects.filter(workspace=request.workspace).order_by("-created_at")
    return render(request, "tenants/admin_tokens.html", {"tokens": tokens, "form": form, "new_secret": new_secret})


@login_required
@workspace_required
@workspace_admin_required
@require_POST
def admin_token_revoke_view(request: HttpRequest, token_id: int) -> HttpResponse:
    token = AdminToken.objects.filter(workspace=request.workspace, pk=token_id).first()
    if token is None:
        raise Http404("No such token.")
    admin_token_revoke(token=token)
    messages.success(request, f"Admin token “{token.name}” revoked.")
    return redirect("tenants:admin_tokens")


@login_required
@workspace_required
def workspace_settings(request: HttpRequest) -> HttpResponse:
    """Workspace budget, limits, alert recipients and response cache; owners and admins edit them."""
    workspace = request.workspace
    can_edit = request.membership is not None and request.membership.is_admin
    initial = {name: getattr(workspace, name) for name in WorkspaceSettingsForm.base_fields}
    form = WorkspaceSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if not can_edit:
            return HttpResponse("Only the workspace's owners and admins can change its settings.", status=403)
        if form.is_valid():
            workspace_policy_update(workspace=workspace, **form.cleaned_data)
            messages.success(request, "Settings saved. Every gateway process applies them within a second.")
            return redirect("tenants:settings")
    plan = workspace.plan or Plan.objects.filter(code="free").first()
    return render(request, "tenants/settings.html", {"form": form, "can_edit": can_edit, "plan": plan,
                                                     "cache": cache_summary(workspace=workspace)})


@login_required
@workspace_required
@workspace_admin_required
@require_POST
def workspace_cache_clear(request: HttpRequest) -> HttpResponse:
    try:
        cleared = cache_clear(workspace=request.workspace)
    except RedisError:
        messages.error(request, "The cache store is unavailable; nothing was cleared. Try again shortly.")
        return redirect("tenants:settings")
    messages.success(request, f"Cache cleared: {cleared['exact_entries']} exact and {cleared['semantic_entries']} "
                              "semantic entries removed.")
    return redirect("tenants:settings")


@login_required
@workspace_required
@workspace_admin_required
@require_POST
def member_limits(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = Membership.objects.filter(workspace=request.workspace, pk=membership_id).select_related("user").first()
    if membership is None:
        raise Http404("No such member.")
    form = MemberLimitsForm(request.POST)
    if form.is_valid():
        member_limits_update(membership=membership, **form.cleaned_data)
        messages.success(request, f"Rate limits for {membership.user.email} saved.")
    else:
        messages.error(request, "Limits are whole numbers of at least 1, or empty for no limit.")
    return redirect("tenants:members")

