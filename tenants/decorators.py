from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect


def workspace_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Views that act on the current workspace; users without one are sent to create one."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if getattr(request, "workspace", None) is None:
            return redirect("tenants:workspace_new")
        return view(request, *args, **kwargs)

    return wrapper


def workspace_admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        membership = getattr(request, "membership", None)
        if membership is None or not membership.is_admin:
            return HttpResponse("Only the workspace's owners and admins can do this.", status=403)
        return view(request, *args, **kwargs)

    return wrapper
