from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bundles.archive import content_write
from bundles.selectors import WorkspaceNotServed, workspace_files
from console.braze import BrazeError, describe_error
from console.workspaces import workspace_get


class Command(BaseCommand):
    help = (
        "Write a workspace's Content Blocks, email templates, preference centers and catalog "
        "schemas, as Braze holds them now, as a tree of files (the same every time for the "
        "same content)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", required=True, help="the workspace's name")
        parser.add_argument("directory", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            workspace = workspace_get(options["workspace"])
            files, notices = workspace_files(workspace=workspace)
        except (LookupError, WorkspaceNotServed) as exc:
            raise CommandError(str(exc)) from None
        except BrazeError as exc:
            raise CommandError(f"Braze could not be read: {describe_error(exc)}") from None
        removed = content_write(root=options["directory"], files=files)
        for notice in notices:
            self.stderr.write(notice)
        self.stdout.write(
            f"Exported {workspace.label}: {len(files)} files to {options['directory']}"
            + (f" ({len(removed)} no longer held removed)" if removed else "")
        )
