"""Management API authentication: a browser session (current workspace) or a
workspace admin token (`Authorization: Bearer aip-admin-...`)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import connection
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from keys.tokens import token_hash

from .models import AdminToken
from .services import ADMIN_TOKEN_PREFIX


class AdminTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, AdminToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.startswith(ADMIN_TOKEN_PREFIX):
            return None
        token = (
            AdminToken.objects.select_related("workspace")
            .filter(token_hash=token_hash(secret.strip()), revoked_at__isnull=True)
            .first()
        )
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked admin token.")
        request._request.workspace = token.workspace  # type: ignore[attr-defined]
        request._request.membership = None  # type: ignore[attr-defined]
        connection.set_tenant(token.workspace)
        return AnonymousUser(), token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="aiproxy"'


class IsWorkspaceMember(permissions.BasePermission):
    """A session user with a current workspace, or an admin token."""

    message = "Sign in and pick a workspace, or send a workspace admin token."

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, AdminToken):
            return True
        return bool(request.user and request.user.is_authenticated and getattr(request._request, "workspace", None))


def api_admin_required(request: Request, message: str) -> None:
    """Writes that change what the workspace's keys may do are for owners and admins (or an
    admin token), not every member."""
    membership = getattr(request._request, "membership", None)
    if not isinstance(request.auth, AdminToken) and not (membership is not None and membership.is_admin):
        raise exceptions.PermissionDenied(message)
