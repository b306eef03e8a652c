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
