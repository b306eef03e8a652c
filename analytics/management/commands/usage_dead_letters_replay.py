"""`python manage.py usage_dead_letters_replay [--limit N]`: queue the usage events that were
set aside (Django admin, "Usage dead letters") again, once their cause is fixed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from analytics.tasks import usage_dead_letters_replay


class Command(BaseCommand):
    help = "Queue set-aside usage events again; the worker stores them or sets them aside with the new error."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--limit", type=int, help="At most this many, the oldest first (default: all).")

    def handle(self, *args: Any, limit: int | None, **options: Any) -> None:
        moved = usage_dead_letters_replay(limit=limit)
        self.stdout.write(f"{moved} usage events queued again.")
