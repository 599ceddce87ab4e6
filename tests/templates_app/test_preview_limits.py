"""Previews are HTML someone typed or Braze holds: bounded in size and number per person,
kept away from the Celery broker's Redis database, and shown without any remote resource."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.core.cache import caches
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from console.roles import Role
from templates_app.services import PreviewRefused, preview_html, preview_stash
from tests.factories import user_with_role

pytestmark = pytest.mark.django_db

ClientFor = Callable[[Role | None], Client]
TRACKER = '<p>Hi</p><img src="https://tracker.example/open.gif?reviewer=1">'


def _db(url: str) -> int:
    parts = urlsplit(url)
    if parts.scheme in ("unix", "redis+socket"):
        return int(parse_qs(parts.query).get("db", ["0"])[0])
    return int(parts.path.strip("/") or 0)


def test_previews_live_in_a_redis_database_of_their_own() -> None:
    assert _db(settings.CACHES["previews"]["LOCATION"]) != _db(settings.CELERY_BROKER_URL)
    assert _db(settings.CACHES["previews"]["LOCATION"]) != _db(settings.REDIS_URL)
    user = user_with_role(Role.VIEWER)
    token = preview_stash(user=user, html="<p>kept apart</p>")
    assert preview_html(user=user, token=token) == "<p>kept apart</p>"
    # Nothing of it in the database the broker and the limiter use.
    assert not [k for k in caches["default"]._cache.get_client().scan_iter(f"*{token}*")]  # type: ignore[attr-defined]


def test_a_preview_larger_than_the_cap_is_refused_in_words(
    client_for: ClientFor, settings: Settings
) -> None:
    settings.PREVIEW_MAX_BYTES = 1024
    response = client_for(Role.EDITOR).post(
        reverse("templates_app:preview_live"), {"source": "content", "content": "x" * 4096}
    )
    body = response.content.decode()
    assert response.status_code == 200  # htmx swaps it in
    assert "too large to preview here (4 KB; previews show up to 1 KB)" in body
    assert "<iframe" not in body


def test_previews_per_person_per_minute_are_capped(
    client_for: ClientFor, settings: Settings
) -> None:
    settings.PREVIEW_RATE_PER_MINUTE = 3
    client = client_for(Role.EDITOR)
    bodies = [
        client.post(
            reverse("templates_app:preview_live"), {"source": "content", "content": f"<p>{n}</p>"}
        ).content.decode()
        for n in range(4)
    ]
    assert all("<iframe" in b for b in bodies[:3])
    assert "Too many previews in a minute" in bodies[3]
    assert "<iframe" not in bodies[3]
    # Another person is not held up by this one.
    other = client_for(Role.EDITOR).post(
        reverse("templates_app:preview_live"), {"source": "content", "content": "<p>x</p>"}
    )
    assert "<iframe" in other.content.decode()


def test_a_person_keeps_only_the_newest_previews(settings: Settings) -> None:
    settings.PREVIEW_MAX_PER_USER = 2
    user = user_with_role(Role.VIEWER)
    tokens = [preview_stash(user=user, html=f"<p>{n}</p>") for n in range(3)]
    assert preview_html(user=user, token=tokens[0]) is None
    assert [preview_html(user=user, token=t) for t in tokens[1:]] == ["<p>1</p>", "<p>2</p>"]


def test_the_size_cap_is_braze_s_largest_body_with_a_margin() -> None:
    with pytest.raises(PreviewRefused):
        preview_stash(user=user_with_role(Role.VIEWER), html="x" * (settings.PREVIEW_MAX_BYTES + 1))
    assert settings.PREVIEW_MAX_BYTES >= 400 * 1024


def test_the_preview_csp_names_no_remote_host_and_the_page_says_so(
    client_for: ClientFor,
) -> None:
    client = client_for(Role.EDITOR)
    fragment = client.post(
        reverse("templates_app:preview_live"), {"source": "content", "content": TRACKER}
    ).content.decode()
    assert "Remote images are not loaded in previews" in fragment
    url = fragment.split('src="', 1)[1].split('"', 1)[0]
    csp = client.get(url)["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in (p.strip() for p in csp.split(";")) if d}
    for name in ("img-src", "style-src", "font-src"):
        sources = directives.get(name, [])
        assert "*" not in sources, name
        assert all(s in ("data:", "'self'", "'unsafe-inline'") for s in sources), (name, sources)
    assert directives["default-src"] == ["'none'"]
