from __future__ import annotations

from django import forms
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest

from .services import workspace_create


class SignupForm(forms.Form):
    """Extra sign-up field: the new user's first workspace (allauth's SIGNUP_FORM_CLASS)."""

    workspace_name = forms.CharField(max_length=100, label="Workspace name", help_text="Your team or project.")

    def signup(self, request: HttpRequest, user: AbstractBaseUser) -> None:
        workspace = workspace_create(name=self.cleaned_data["workspace_name"], owner=user)
        request.session["workspace_id"] = workspace.pk


class WorkspaceForm(forms.Form):
    name = forms.CharField(max_length=100, label="Workspace name")


class MemberAddForm(forms.Form):
    email = forms.EmailField(label="Email of an existing user")
    role = forms.ChoiceField(choices=[("member", "Member"), ("admin", "Admin")])


class AdminTokenForm(forms.Form):
    name = forms.CharField(max_length=100)
