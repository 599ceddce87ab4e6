from unittest import mock

from django.core.management import call_command


def test_it_queues_a_catalog_sync_and_a_content_sync_after_the_countdown() -> None:
    # The suite's single workspace is "default": each message names it.
    with (
        mock.patch("catalogs.tasks.catalog_sync_schedule_task.apply_async") as catalogs,
        mock.patch("templates_app.tasks.content_sync_task.apply_async") as content,
    ):
        call_command("enqueue_syncs", "--countdown", "5")
    catalogs.assert_called_once_with(args=("default",), countdown=5.0)
    content.assert_called_once_with(args=("default",), countdown=5.0)
