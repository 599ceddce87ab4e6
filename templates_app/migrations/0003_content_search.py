"""Content search over the whole history: a full-text vector, a trigram index, and each
version's Content Block includes.

The vector uses the 'simple' configuration: content is multilingual and full of Liquid, so
no language's stemming or stop words fit it. PostgreSQL's parser splits `spring_sale` at the
underscore, so identifiers and other substrings are found through a trigram index over the
same text, kept in a generated `search_text` column. Both are in SQL, as the audit's trigram
indexes are (console 0009): GinIndex would need django.contrib.postgres installed.
"""

from typing import Any

from django.db import migrations, models

# Name, then the short fields, then the long ones; ranking weighs them A, B and C.
SHORT = ("subject", "description", "preference_center_title")
LONG = (
    "body",
    "plaintext_body",
    "content",
    "preference_center_page_html",
    "confirmation_page_html",
)


def _joined(keys: tuple[str, ...], snapshot: str) -> str:
    return " || ' ' || ".join(f"coalesce({snapshot} ->> '{key}', '')" for key in keys)


# Lowercased once when written: LIKE on it is a byte match, where ILIKE on UTF-8 text
# lowercases every row it rechecks (ten times slower, measured with scripts/bench-search).
SEARCH_TEXT = f"""
ALTER TABLE templates_app_contentversion ADD COLUMN search_text text
GENERATED ALWAYS AS (
    lower(coalesce(name, '') || ' ' || {_joined(SHORT, "snapshot")} || ' '
        || {_joined(LONG, "snapshot")})
) STORED
"""

SEARCH_VECTOR = f"""
ALTER TABLE templates_app_contentversion ADD COLUMN search_vector tsvector
GENERATED ALWAYS AS (
    setweight(to_tsvector('simple'::regconfig, coalesce(name, '')), 'A')
    || setweight(to_tsvector('simple'::regconfig, {_joined(SHORT, "snapshot")}), 'B')
    || setweight(to_tsvector('simple'::regconfig, {_joined(LONG, "snapshot")}), 'C')
) STORED
"""

# The name and the short fields alone, for ranking: small enough to stay in the row, where
# ranking by the whole vector would read every match's body from TOAST.
SEARCH_TITLE = f"""
ALTER TABLE templates_app_contentversion ADD COLUMN search_title tsvector
GENERATED ALWAYS AS (
    setweight(to_tsvector('simple'::regconfig, coalesce(name, '')), 'A')
    || setweight(to_tsvector('simple'::regconfig, {_joined(SHORT, "snapshot")}), 'B')
) STORED
"""


def _record_includes(apps: Any, schema_editor: Any) -> None:
    # The parser is the application's own (one definition of "includes"); imported here
    # because a migration module is loaded before the apps are ready.
    from templates_app.search import version_includes

    version = apps.get_model("templates_app", "ContentVersion")
    for row in version.objects.only("pk", "resource_type", "snapshot").iterator(chunk_size=500):
        found = version_includes(resource_type=row.resource_type, snapshot=row.snapshot)
        if found:
            version.objects.filter(pk=row.pk).update(includes=found)


class Migration(migrations.Migration):
    dependencies = [("templates_app", "0002_preview_profiles_and_settings")]

    operations = [
        # Trusted since PostgreSQL 13: the database's owner may create it.
        migrations.RunSQL(
            "CREATE EXTENSION IF NOT EXISTS pg_trgm", reverse_sql=migrations.RunSQL.noop
        ),
        migrations.RunSQL(
            SEARCH_TEXT,
            reverse_sql="ALTER TABLE templates_app_contentversion DROP COLUMN search_text",
        ),
        migrations.RunSQL(
            SEARCH_VECTOR,
            reverse_sql="ALTER TABLE templates_app_contentversion DROP COLUMN search_vector",
        ),
        migrations.RunSQL(
            SEARCH_TITLE,
            reverse_sql="ALTER TABLE templates_app_contentversion DROP COLUMN search_title",
        ),
        migrations.RunSQL(
            "CREATE INDEX content_version_search ON templates_app_contentversion"
            " USING gin (search_vector)",
            reverse_sql="DROP INDEX content_version_search",
        ),
        migrations.RunSQL(
            "CREATE INDEX content_version_search_trgm ON templates_app_contentversion"
            " USING gin (search_text gin_trgm_ops)",
            reverse_sql="DROP INDEX content_version_search_trgm",
        ),
        migrations.AddField(
            model_name="contentversion",
            name="includes",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.RunSQL(
            "CREATE INDEX content_version_includes ON templates_app_contentversion"
            " USING gin (includes jsonb_path_ops)",
            reverse_sql="DROP INDEX content_version_includes",
        ),
        migrations.RunPython(_record_includes, migrations.RunPython.noop),
    ]
