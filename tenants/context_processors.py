from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .services import workspaces_for


def workspace(request: HttpRequest) -> dict[str, Any]:
    if not request.user.is_authenticated:
        return {}
    return {
        "current_workspace": getattr(request, "workspace", None),
        "current_membership": getattr(request, "membership", None),
        "my_memberships": workspaces_for(user=request.user),
    }
