"""Migration 0003 (content search) applies to a history that already holds versions: their
search columns are filled and their Content Block includes parsed, and it reverses."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from templates_app import search
from templates_app.models import ContentVersion

BEFORE = [("templates_app", "0002_preview_profiles_and_settings")]


@pytest.mark.django_db(transaction=True)
def test_existing_versions_become_searchable_and_know_their_includes() -> None:
    executor = MigrationExecutor(connection)
    heads = executor.loader.graph.leaf_nodes()
    executor.migrate(BEFORE)
    try:
        old = MigrationExecutor(connection).loader.project_state(BEFORE).apps
        old.get_model("templates_app", "ContentVersion").objects.create(
            resource_type="email_template",
            braze_id="t1",
            version=1,
            name="autumn letter",
            snapshot={
                "template_name": "autumn letter",
                "subject": "Leaves",
                "body": "<p>{{content_blocks.${spring_sale}}} and spring_sale in prose</p>",
            },
            digest="d",
            source="synced",
        )
    finally:
        MigrationExecutor(connection).migrate(heads)
    version = ContentVersion.objects.get(braze_id="t1")
    assert version.includes == ["spring_sale"]
    assert [hit.name for hit in search.content_search(query="leaves").hits] == ["autumn letter"]
    assert [u.name for u in search.content_block_usage(name="spring_sale")] == ["autumn letter"]


@pytest.mark.django_db(transaction=True)
def test_it_reverses() -> None:
    executor = MigrationExecutor(connection)
    heads = executor.loader.graph.leaf_nodes()
    executor.migrate(BEFORE)
    try:
        with connection.cursor() as cursor:
            columns = {
                c.name
                for c in connection.introspection.get_table_description(
                    cursor, "templates_app_contentversion"
                )
            }
        assert not {"search_vector", "search_title", "search_text", "includes"} & columns
    finally:
        MigrationExecutor(connection).migrate(heads)
