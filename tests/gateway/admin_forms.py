"""What a staff member's browser posts to Django admin: a logged-in client, and the rows of
an inline formset with its management form."""

from __future__ import annotations

from typing import Any

from django.test import Client


def staff_client(user: Any) -> Client:
    user.is_staff = user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def inline_rows(prefix: str, rows: list[dict[str, Any]], initial: int = 0) -> dict[str, Any]:
    """`rows` as inline forms named `prefix` (the first `initial` of them existing objects, with
    their "id"); a value of None is left out, as a browser leaves out an unchecked box."""
    data: dict[str, Any] = {f"{prefix}-TOTAL_FORMS": str(len(rows)), f"{prefix}-INITIAL_FORMS": str(initial),
                            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{name}": value for name, value in row.items() if value is not None})
    return data


def deployment_row(**fields: Any) -> dict[str, Any]:
    """A deployment inline row as the add form first shows it (its defaults), with `fields` typed in."""
    row: dict[str, Any] = {"upstream_name": "", "name": "", "weight": "1", "priority": "0", "input_price_per_mtok": "0",
                           "output_price_per_mtok": "0", "rpm_limit": "", "tpm_limit": "", "max_in_flight": "",
                           "connect_timeout": "", "first_byte_timeout": "", "total_timeout": "", "enabled": "on"}
    return {**row, **fields}
