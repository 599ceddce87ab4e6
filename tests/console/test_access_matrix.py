"""Every URL the project defines by every role: the status each one must get.

The table is written by hand on purpose: it is the specification of who may open
what, independent of the decorators it checks. A URL missing from the table fails
`test_every_url_is_in_the_matrix`, so new screens cannot skip this review.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from console.roles import Role

ALL = frozenset(Role)
NOBODY: frozenset[Role] = frozenset()


@dataclass(frozen=True)
class Rule:
    allowed: frozenset[Role]
    kwargs: dict[str, object] = field(default_factory=dict)
    public: bool = False  # anonymous users get the page itself, not the login page
    any_signed_in: bool = False  # also a user with no role
    method: str = "get"
    ok_status: frozenset[int] = frozenset({200})


MATRIX: dict[str, Rule] = {
    "home": Rule(ALL, any_signed_in=True),
    "healthz": Rule(ALL, public=True, any_signed_in=True, ok_status=frozenset({200, 503})),
    "login": Rule(NOBODY, public=True),
    "logout": Rule(ALL, any_signed_in=True, public=True, method="post", ok_status=frozenset({302})),
    "password_change": Rule(ALL, any_signed_in=True),
    "password_change_done": Rule(ALL, any_signed_in=True),
    "changes:list": Rule(frozenset({Role.EDITOR, Role.REVIEWER, Role.AUDITOR, Role.ADMIN})),
    "audit:list": Rule(frozenset({Role.AUDITOR, Role.ADMIN})),
    "catalogs:list": Rule(ALL),
    "templates_app:email_templates": Rule(ALL),
    "templates_app:content_blocks": Rule(ALL),
    "templates_app:preference_centers": Rule(ALL),
    "users_admin:index": Rule(frozenset({Role.AUDITOR, Role.ADMIN})),
}


def _url_names(patterns: list[URLPattern | URLResolver], prefix: str = "") -> Iterator[str]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            namespace = f"{prefix}{pattern.namespace}:" if pattern.namespace else prefix
            yield from _url_names(pattern.url_patterns, namespace)
        elif pattern.name:
            yield f"{prefix}{pattern.name}"


def test_every_url_is_in_the_matrix() -> None:
    names = set(_url_names(get_resolver().url_patterns))
    assert names - MATRIX.keys() == set(), "add these URL names to MATRIX"
    assert MATRIX.keys() - names == set(), "these MATRIX entries no longer exist"


def _request(client: Client, name: str, rule: Rule):  # type: ignore[no-untyped-def]
    url = reverse(name, kwargs=rule.kwargs or None)
    return getattr(client, rule.method)(url)


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_anonymous_users_are_sent_to_sign_in(db: None, name: str) -> None:
    rule = MATRIX[name]
    response = _request(Client(), name, rule)
    if rule.public:
        assert response.status_code in {200, 302, 503}
        if response.status_code == 302:
            assert "/accounts/login/" in response["Location"]
    else:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("role", [*Role, None], ids=[*(r.value for r in Role), "no-role"])
@pytest.mark.parametrize("name", sorted(MATRIX))
def test_each_role_gets_exactly_what_the_matrix_allows(
    client_for: Callable[[Role | None], Client], name: str, role: Role | None
) -> None:
    rule = MATRIX[name]
    response = _request(client_for(role), name, rule)
    if name == "login":
        # Signed-in users are sent on from the login page.
        assert response.status_code == 302
        return
    allowed = rule.any_signed_in or (role is not None and role in rule.allowed)
    expected = rule.ok_status if allowed else {403}
    assert response.status_code in expected, f"{role} on {name}"
