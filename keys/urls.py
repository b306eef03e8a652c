from django.urls import path

from . import views

app_name = "keys"
urlpatterns = [
    path("", views.key_list, name="list"),
    path("<int:key_id>/", views.key_detail, name="detail"),
    path("<int:key_id>/rename/", views.key_rename, name="rename"),
    path("<int:key_id>/revoke/", views.key_revoke, name="revoke"),
]
