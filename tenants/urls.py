from django.urls import path

from . import views

app_name = "tenants"
urlpatterns = [
    path("new/", views.workspace_new, name="workspace_new"),
    path("switch/<int:workspace_id>/", views.workspace_switch, name="workspace_switch"),
    path("members/", views.members, name="members"),
    path("settings/", views.workspace_settings, name="settings"),
    path("settings/cache/clear/", views.workspace_cache_clear, name="cache_clear"),
    path("members/<int:membership_id>/limits/", views.member_limits, name="member_limits"),
    path("admin-tokens/", views.admin_tokens, name="admin_tokens"),
    path("admin-tokens/<int:token_id>/revoke/", views.admin_token_revoke_view, name="admin_token_revoke"),
]
