from allauth.account.views import SignupView
from django.contrib import admin
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from analytics.views import usage_list
from keys.api import ApiKeyDetailView, ApiKeyListView
from tenants.api import WorkspaceCacheClearView, WorkspaceSettingsView
from tenants.views import home


@csrf_exempt
def api_not_found(request: HttpRequest) -> JsonResponse:
    """Unknown management API paths (e.g. a key id that is not a number) answer in JSON, as the API does;
    paths without the trailing slash still get CommonMiddleware's redirect first."""
    return JsonResponse({"detail": "Not found."}, status=404)


urlpatterns = [
    path("", home, name="home"),
    # one transaction: the new user and their first workspace (tenants.forms.SignupForm) exist together or not at all
    path("accounts/signup/", transaction.atomic(SignupView.as_view()), name="account_signup"),
    path("accounts/", include("allauth.urls")),
    path("workspaces/", include("tenants.urls")),
    path("keys/", include("keys.urls")),
    path("usage/", usage_list, name="usage"),
    path("admin/", admin.site.urls),
    path("api/keys/", ApiKeyListView.as_view(), name="api-keys"),
    path("api/keys/<int:key_id>/", ApiKeyDetailView.as_view(), name="api-key-detail"),
    path("api/workspace/", WorkspaceSettingsView.as_view(), name="api-workspace"),
    path("api/workspace/cache/clear/", WorkspaceCacheClearView.as_view(), name="api-workspace-cache-clear"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^api/.*/$", api_not_found),
]
