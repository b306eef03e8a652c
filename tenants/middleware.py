"""Which workspace a request is for: the workspace host it came to (strictly matched), or for
the main host, the workspace the signed-in user works in; the database connection then points
at that workspace's schema for the rest of the request."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseNotFound
from django_tenants.middleware.main import TenantMainMiddleware

from .services import membership_get, membership_last_used

SESSION_KEY = "workspace_id"
# reachable on a workspace's host by someone who is not (yet) its member
NON_MEMBER_PATHS = ("/accounts/", "/workspaces/invite/")


class WorkspaceHostMiddleware(TenantMainMiddleware):
    """django-tenants' host -> tenant routing, made strict.

    A host is the workspace's only when it is exactly one of its domains: no `www.` prefix
    dropped, no trailing dot, no deeper subdomain. Any other host under BASE_DOMAIN (and any
    host ending in a dot) is unknown: 404, rather than the main site, so a look-alike host never
    serves a page. X-Forwarded-Host counts only when AIPROXY_TRUSTED_PROXY sets
    USE_X_FORWARDED_HOST (Django's get_host)."""

    @staticmethod
    def hostname_from_request(request: HttpRequest) -> str:
        host = request.get_host().lower()
        if host.startswith("["):  # an IPv6 literal
            return host[: host.find("]") + 1]
        return host.rsplit(":", 1)[0]

    def no_tenant_found(self, request: HttpRequest, hostname: str) -> HttpResponse | None:
        base = settings.BASE_DOMAIN.lower()
        if hostname.endswith(".") or (hostname.endswith("." + base) and hostname != "www." + base):
            return HttpResponseNotFound("Unknown host.", content_type="text/plain")
        super().no_tenant_found(request, hostname)
        return None


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
                if membership is None and not request.path.startswith(NON_MEMBER_PATHS):
                    return HttpResponseForbidden("You are not a member of this workspace.")
            else:
                wanted = request.session.get(SESSION_KEY)
                if wanted is not None:
                    membership = membership_get(user=request.user, workspace_id=wanted)
                if membership is None:
                    membership = membership_last_used(user=request.user)
                    if membership is not None:
                        request.session[SESSION_KEY] = membership.workspace_id
            if membership is not None:
                request.workspace = membership.workspace  # type: ignore[attr-defined]
                request.membership = membership  # type: ignore[attr-defined]
                connection.set_tenant(membership.workspace)
        return self.get_response(request)
