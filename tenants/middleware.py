"""Picks the workspace a signed-in user is working in and points the database
connection at its schema for the rest of the request."""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden

from .services import membership_get, workspaces_for

SESSION_KEY = "workspace_id"


class CurrentWorkspaceMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.workspace = None  # type: ignore[attr-defined]
        request.membership = None  # type: ignore[attr-defined]
        host_tenant = getattr(request, "tenant", None)
        on_workspace_host = host_tenant is not None and host_tenant.schema_name != "public"
        if request.user.is_authenticated:
            membership = None
            if on_workspace_host and host_tenant is not None:
                membership = membership_get(user=request.user, workspace_id=host_tenant.pk)
                if membership is None and not request.path.startswith("/accounts/"):
                    return HttpResponseForbidden("You are not a member of this workspace.")
            else:
                wanted = request.session.get(SESSION_KEY)
                if wanted is not None:
                    membership = membership_get(user=request.user, workspace_id=wanted)
                if membership is None:
                    memberships = workspaces_for(user=request.user)
                    membership = memberships[0] if memberships else None
                    if membership is not None:
                        request.session[SESSION_KEY] = membership.workspace_id
            if membership is not None:
                request.workspace = membership.workspace  # type: ignore[attr-defined]
                request.membership = membership  # type: ignore[attr-defined]
                connection.set_tenant(membership.workspace)
        return self.get_response(request)
