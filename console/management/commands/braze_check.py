"""``manage.py braze_check``: is Braze reachable, and which permissions does the key have?

Calls one read endpoint per resource (catalogs, catalog items, email templates, Content
Blocks, preference centers, and SCIM when a token is set). Exits 1 when Braze cannot be
reached, the key is refused, or a probed permission is missing.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from console.braze import get_client
from console.braze.limiter import limits_in_effect
from console.braze.permissions import PURPOSE, cached_permission_report, required_permissions


class Command(BaseCommand):
    help = "Check that Braze is reachable and report which permissions the API key has."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        client = get_client()
        report = cached_permission_report(client=client, refresh=True)
        failed = bool(report.problem or report.missing or not report.reachable)
        if options["json"]:
            self.stdout.write(json.dumps(report.to_json(), indent=2))
        else:
            self.stdout.write(f"Braze endpoint: {report.endpoint}")
            self.stdout.write(f"Reachable: {'yes' if report.reachable else 'no'}")
            if report.problem:
                self.stdout.write(f"Problem: {report.problem}")
            self.stdout.write("")
            self.stdout.write("| Permission | Used for | Status |")
            self.stdout.write("| --- | --- | --- |")
            for permission in [*required_permissions(), "SCIM token"]:
                if permission in report.granted:
                    status = "granted"
                elif permission in report.missing:
                    status = "MISSING"
                else:
                    status = report.unknown.get(permission, "not configured")
                purpose = PURPOSE.get(permission, "Dashboard users (SCIM)")
                self.stdout.write(f"| {permission} | {purpose} | {status} |")
            self.stdout.write("")
            self.stdout.write("Rate limits in effect (per workspace):")
            for row in limits_in_effect(client.limiter):
                learned = f"{row['learned']:,}" if row["learned"] else "not yet seen"
                source = "override" if row["override"] else f"learned from Braze: {learned}"
                self.stdout.write(
                    f"  {row['group']}: {row['limit']:,} per {row['window_seconds']:g} s "
                    f"(configured {row['configured']:,}, {source}; "
                    f"background work: {row['background_limit']:,})"
                )
        if failed:
            raise SystemExit(1)
