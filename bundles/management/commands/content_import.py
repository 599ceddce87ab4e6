from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from bundles.archive import TreeRefused, files_from_directory
from bundles.selectors import WorkspaceNotServed
from bundles.services import content_import
from console.braze import BrazeError, describe_error
from console.changes.services import ChangeRequestError
from console.workspaces import workspace_get


class Command(BaseCommand):
    help = (
        "Compare a tree of files (as content_export writes it) with a workspace and open one "
        "change request, by AUTHOR, with the differences. Nothing is applied without approval."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", required=True, help="the workspace's name")
        parser.add_argument("--author", required=True, help="the importer's console username")
        parser.add_argument("directory", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        root: Path = options["directory"]
        if not root.is_dir():
            raise CommandError(f"{root} is not a directory.")
        user_model = get_user_model()
        try:
            author = user_model.objects.get(username=options["author"], is_active=True)
        except user_model.DoesNotExist:
            raise CommandError(f"No active console user is named {options['author']!r}.") from None
        try:
            workspace = workspace_get(options["workspace"])
            result = content_import(
                actor=author, workspace=workspace, files=files_from_directory(root)
            )
        except TreeRefused as exc:
            for error in exc.errors:
                self.stderr.write(str(error))
            raise CommandError("Nothing was proposed: fix the files above.") from None
        except (LookupError, WorkspaceNotServed, ChangeRequestError) as exc:
            raise CommandError(str(exc)) from None
        except BrazeError as exc:
            raise CommandError(f"Braze could not be read: {describe_error(exc)}") from None
        for message in result.messages:
            self.stdout.write(message)
        cr = result.change_request
        if cr is not None:
            self.stdout.write(
                f"Opened change request #{cr.pk} ({len(result.changes.parts)} parts): {cr.title}"
            )
