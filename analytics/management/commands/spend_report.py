"""`python manage.py spend_report --workspace <slug>`: spend per key and model for the
current budget period, from the database (what billing uses)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from analytics.selectors import spend_by_key_and_model
from billing.money import usd_format
from keys.selectors import period_start
from tenants.models import Workspace


class Command(BaseCommand):
    help = "Print a workspace's spend per key and model for the current period."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--workspace", required=True, help="The workspace's slug.")
        parser.add_argument("--period", choices=["daily", "weekly", "monthly", "lifetime"],
                            help="Default: the workspace budget's period (monthly without a budget).")

    def handle(self, *args: Any, workspace: str, period: str | None, **options: Any) -> None:
        found = Workspace.objects.filter(slug=workspace).first()
        if found is None:
            raise CommandError(f"No workspace with the slug '{workspace}'.")
        period = period or (found.budget_period if found.budget_amount is not None else "monthly")
        since = period_start(period)
        rows = spend_by_key_and_model(workspace=found, since=since)
        when = f"since {since:%Y-%m-%d %H:%M} UTC" if since else "all time"
        self.stdout.write(f"Spend for workspace '{found.slug}' ({found.name}), {period} period, {when}, "
                          f"as of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
        self.stdout.write(f"{'key':<30} {'model':<28} {'requests':>9} {'input tok':>11} {'output tok':>11} {'cost (USD)':>14}")
        total = Decimal("0")
        for row in rows:
            name = row["key_name"] or f"key {row['key_id']}"
            self.stdout.write(f"{name[:30]:<30} {row['model'][:28]:<28} {row['requests']:>9} {row['input_tokens'] or 0:>11} "
                              f"{row['output_tokens'] or 0:>11} {row['cost']:>14.8f}")
            total += row["cost"]
        self.stdout.write(f"{'total':<30} {'':<28} {sum(r['requests'] for r in rows):>9} {'':>11} {'':>11} {total:>14.8f}")
        if found.budget_amount is not None:
            share = (100 * total / found.budget_amount) if found.budget_amount else 0
            self.stdout.write(f"\nWorkspace budget: {usd_format(found.budget_amount)} {found.budget_period}; "
                              f"spent {usd_format(total)} ({share:.1f}%).")
