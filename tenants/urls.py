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
    path("members/<int:membership_id>/role/", views.member_role, name="member_role"),
    path("members/<int:membership_id>/remove/", views.member_remove_view, name="member_remove"),
    path("invitations/<int:invitation_id>/resend/", views.invitation_resend_view, name="invitation_resend"),
    path("invitations/<int:invitation_id>/revoke/", views.invitation_revoke_view, name="invitation_revoke"),
    path("invite/<str:token>/", views.invitation_accept_view, name="invitation_accept"),
    path("admin-tokens/", views.admin_tokens, name="admin_tokens"),
    path("admin-tokens/<int:token_id>/revoke/", views.admin_token_revoke_view, name="admin_token_revoke"),
]
