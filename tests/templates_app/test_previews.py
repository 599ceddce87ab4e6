from __future__ import annotations

from collections.abc import Callable

from django.test import Client
from django.urls import reverse

from console.roles import Role
from templates_app.services import preview_stash
from tests.factories import user_with_role

EVIL = "<p>hello</p><script>document.title='pwned'</script>"


def test_a_preview_is_served_under_a_csp_that_runs_no_script_and_may_be_framed_here(
    db: None,
) -> None:
    user = user_with_role(Role.VIEWER)
    client = Client()
    client.force_login(user)
    token = preview_stash(user=user, html=EVIL)
    response = client.get(reverse("templates_app:preview", args=[token]))
    assert response.status_code == 200
    assert response.content.decode() == EVIL
    csp = response["Content-Security-Policy"]
    directives = [d.strip() for d in csp.split(";")]
    assert "sandbox" in directives
    assert "default-src 'none'" in directives
    assert not any(d.startswith("script-src") for d in directives)
    assert "frame-ancestors 'self'" in directives
    assert response["X-Frame-Options"] == "SAMEORIGIN"


def test_a_preview_belongs_to_the_user_who_asked_for_it(db: None) -> None:
    owner = user_with_role(Role.VIEWER)
    token = preview_stash(user=owner, html=EVIL)
    other = Client()
    other.force_login(user_with_role(Role.VIEWER))
    assert other.get(reverse("templates_app:preview", args=[token])).status_code == 404


def test_the_live_preview_answers_with_sandboxed_frames(
    client_for: Callable[[Role | None], Client],
) -> None:
    response = client_for(Role.EDITOR).post(
        reverse("templates_app:preview_live"), {"source": "content", "content": EVIL}
    )
    body = response.content.decode()
    assert body.count("<iframe") == 2
    assert body.count(" sandbox ") == 2
    assert "<script>" not in body


def test_pages_that_embed_previews_keep_frame_src_self(
    client_for: Callable[[Role | None], Client],
) -> None:
    response = client_for(Role.VIEWER).get(
        reverse("templates_app:history", args=["content_block", "x"])
    )
    assert "frame-src 'self'" in response["Content-Security-Policy"]
