from django.contrib import admin

from .models import Domain, Membership, Workspace


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "schema_name", "created_at"]
    search_fields = ["name", "slug"]
    readonly_fields = ["schema_name"]
    inlines = [DomainInline, MembershipInline]

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def save_related(self, request, form, formsets, change):  # type: ignore[no-untyped-def]
        """Limits, budget, plan or member limits changed here reach the gateway too."""
        super().save_related(request, form, formsets, change)
        if change:
            from keys.services import workspace_keys_publish

            workspace_keys_publish(workspace=form.instance)
