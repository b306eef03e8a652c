from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from redis.exceptions import RedisError

from analytics.models import UsageEvent
from billing.models import Plan
from cache.selectors import cache_summary
from cache.services import cache_clear
from keys.forms import form_errors_add
from keys.models import ApiKey

from .decorators import workspace_admin_required, workspace_required
from .forms import (
    AdminTokenForm,
    InvitationForm,
    MemberLimitsForm,
    MemberRoleForm,
    WorkspaceForm,
    WorkspaceSettingsForm,
)
from .middleware import SESSION_KEY
from .models import AdminToken, Invitation, Membership
from .services import (
    InvitationInvalid,
    MembershipError,
    admin_token_create,
    admin_token_revoke,
    invitation_accept,
    invitation_create,
    invitation_for_token,
    invitation_resend,
    invitation_revoke,
    invitations_pending,
    member_limits_update,
    member_remove,
    member_role_change,
    membership_get,
    membership_use,
    user_email_status,
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
        created = membership_get(user=request.user, workspace_id=workspace.pk)
        if created is not None:
            membership_use(membership=created)
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
    membership_use(membership=membership)
    return redirect("home")


def _base_url(request: HttpRequest) -> str:
    """Links in emails point at the host the admin is using."""
    return request.build_absolute_uri("/").rstrip("/")


@login_required
@workspace_required
def members(request: HttpRequest) -> HttpResponse:
    """The workspace's members and pending invitations; owners and admins invite by email."""
    form = InvitationForm(request.POST or None)
    if request.method == "POST":
        if not request.membership or not request.membership.is_admin:
            return HttpResponse("Only the workspace's owners and admins can invite members.", status=403)
        if form.is_valid():
            try:
                invitation = invitation_create(actor=request.membership, email=form.cleaned_data["email"],
                                               role=form.cleaned_data["role"], base_url=_base_url(request))
            except MembershipError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Invitation sent to {invitation.email}. They join once they accept it.")
                return redirect("tenants:members")
    actor = request.membership
    memberships = list(
        Membership.objects.select_related("user").filter(workspace=request.workspace).order_by("created_at")
    )
    for m in memberships:
        m.can_change_role = actor.is_owner or (actor.is_admin and not m.is_owner)  # type: ignore[attr-defined]
        m.can_remove = m.pk == actor.pk or m.can_change_role  # type: ignore[attr-defined]
    invitations = invitations_pending(workspace=request.workspace) if actor.is_admin else []
    return render(request, "tenants/members.html", {
        "memberships": memberships, "form": form, "invitations": invitations, "role_choices": Membership.Role.choices,
    })


def _member_or_404(request: HttpRequest, membership_id: int) -> Membership:
    found = Membership.objects.select_related("user").filter(workspace=request.workspace, pk=membership_id)
    membership = found.first()
    if membership is None:
        raise Http404("No such member.")
    return membership


@login_required
@workspace_required
@require_POST
def member_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = _member_or_404(request, membership_id)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick a role: owner, admin or member.")
        return redirect("tenants:members")
    try:
        member_role_change(actor=request.membership, membership=membership, role=form.cleaned_data["role"])
    except MembershipError as exc:
        return HttpResponse(str(exc), status=403)
    messages.success(request, f"{membership.user.email} is now {membership.get_role_display().lower()}.")
    return redirect("tenants:members")


@login_required
@workspace_required
@require_POST
def member_remove_view(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = _member_or_404(request, membership_id)
    leaving = membership.pk == request.membership.pk
    try:
        member_remove(actor=request.membership, membership=membership)
    except MembershipError as exc:
        return HttpResponse(str(exc), status=403)
    if leaving:
        messages.success(request, f"You left {request.workspace.name}.")
        return redirect("home")
    messages.success(request, f"{membership.user.email} removed; the keys they created are revoked.")
    return redirect("tenants:members")


def _invitation_or_404(request: HttpRequest, invitation_id: int) -> Invitation:
    invitation = Invitation.objects.filter(workspace=request.workspace, pk=invitation_id).first()
    if invitation is None:
        raise Http404("No such invitation.")
    return invitation


@login_required
@workspace_required
@workspace_admin_required
@require_POST
def invitation_resend_view(request: HttpRequest, invitation_id: int) -> HttpResponse:
    invitation = _invitation_or_404(request, invitation_id)
    try:
        invitation_resend(actor=request.membership, invitation=invitation, base_url=_base_url(request))
    except MembershipError as exc:
        return HttpResponse(str(exc), status=403)
    messages.success(request, f"Invitation sent again to {invitation.email}; the earlier link no longer works.")
    return redirect("tenants:members")


@login_required
@workspace_required
@workspace_admin_required
@require_POST
def invitation_revoke_view(request: HttpRequest, invitation_id: int) -> HttpResponse:
    invitation = _invitation_or_404(request, invitation_id)
    invitation_revoke(actor=request.membership, invitation=invitation)
    messages.success(request, f"Invitation for {invitation.email} revoked.")
    return redirect("tenants:members")


INVITATION_PROBLEMS = {
    "unknown": "This invitation link is not valid. Check that you copied all of it, or ask for a new invitation.",
    "revoked": "This invitation was revoked. Ask the workspace's owner for a new one if you still need access.",
    "used": "This invitation was already accepted. Each link works once.",
    "expired": "This invitation has expired. Ask the workspace's owner to send it again.",
}


def invitation_accept_view(request: HttpRequest, token: str) -> HttpResponse:
    """The emailed link: shows the invitation, and accepts it on POST for the invited email."""
    try:
        invitation = invitation_for_token(token=token)
    except InvitationInvalid as exc:
        status = 404 if exc.reason == "unknown" else 410
        return render(request, "tenants/invitation_invalid.html",
                      {"reason": exc.reason, "problem": INVITATION_PROBLEMS[exc.reason]}, status=status)
    email_status = user_email_status(user=request.user, email=invitation.email) if request.user.is_authenticated else None
    signed_in_as_invitee = email_status == "verified"
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(f"{settings.LOGIN_URL}?next={request.path}")
        try:
            membership = invitation_accept(token=token, user=request.user)
        except InvitationInvalid as exc:
            return render(request, "tenants/invitation_invalid.html",
                          {"reason": exc.reason, "problem": INVITATION_PROBLEMS[exc.reason]}, status=410)
        except MembershipError as exc:
            context = {"invitation": invitation, "error": str(exc),
                       "email_unverified": user_email_status(user=request.user, email=invitation.email) == "unverified"}
            return render(request, "tenants/invitation.html", context, status=403)
        request.session[SESSION_KEY] = membership.workspace_id
        messages.success(request, f"Welcome to {membership.workspace.name}.")
        return redirect("home")
    return render(request, "tenants/invitation.html",
                  {"invitation": invitation, "signed_in_as_invitee": signed_in_as_invitee,
                   "email_unverified": email_status == "unverified"})


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
            try:
                workspace_policy_update(workspace=workspace, **form.cleaned_data)
            except ValidationError as exc:
                form_errors_add(form, exc)
                workspace.refresh_from_db()
            else:
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
    saved = False
    if form.is_valid():
        try:
            member_limits_update(membership=membership, **form.cleaned_data)
            saved = True
        except ValidationError:
            membership.refresh_from_db()
    if saved:
        messages.success(request, f"Rate limits for {membership.user.email} saved.")
    else:
        messages.error(request, "Limits are whole numbers of at least 1, or empty for no limit.")
    return redirect("tenants:members")

