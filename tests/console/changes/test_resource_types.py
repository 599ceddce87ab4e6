"""The contract every registered resource type keeps, walked for each of them.

Its identifiers round-trip (build → parse → build) and the requests its app makes carry one
of its shapes; every URL it names is in the access matrix, open to all who may see its
requests; its proposers and reviewers may see its requests; and who may see them is what
the hand-written table of `test_object_access.py` says, which walks real requests of every
type through the list, detail, act and preview views. A type of the test's own, with an
audience no real type has, shows those views ask the registry rather than knowing the types.
"""

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from console.changes.models import ChangeRequest
from console.changes.policy import approvals_required
from console.changes.resource_types import (
    Identifiers,
    IdentifierShape,
    ResourceType,
    UnknownResourceType,
    resource_type_get,
    resource_types_registered,
)
from console.changes.selectors import CHANGE_REQUEST_READERS, change_request_may_view
from console.changes.services import (
    ChangeRequestError,
    change_request_propose,
)
from console.roles import ROLE_CAPABILITIES, Capability, Role
from tests.console.changes.conftest import FakeBraze, registered
from tests.console.changes.test_object_access import EXAMPLES, _propose
from tests.console.test_access_matrix import MATRIX
from tests.factories import user_with_role

TYPES = [rt.key for rt in resource_types_registered()]


def _viewers(kind: ResourceType) -> frozenset[Role]:
    """Roles whose capabilities let them see the type's requests, by the registry alone."""
    return frozenset(
        role
        for role, caps in ROLE_CAPABILITIES.items()
        if caps & kind.view and caps & CHANGE_REQUEST_READERS
    )


# --- identifiers ------------------------------------------------------------------------------


def test_a_shape_splits_at_the_first_separator_and_gives_the_last_part_the_rest() -> None:
    shape = IdentifierShape("{catalog}/{item}")
    assert shape.parts == ("catalog", "item")
    assert shape.parse("shoes/sku-1") == {"catalog": "shoes", "item": "sku-1"}
    assert shape.parse("shoes/sku/1") == {"catalog": "shoes", "item": "sku/1"}
    assert shape.parse("shoes") is None
    assert shape.parse("shoes/") is None  # parts are never empty


def test_parse_answers_with_the_first_shape_that_matches_and_build_with_the_named_parts() -> None:
    ids = Identifiers("{catalog}/bulk-{job}/retry-{round}", "{catalog}/bulk-{job}")
    assert ids.parse("shoes/bulk-4/retry-2") == {"catalog": "shoes", "job": "4", "round": "2"}
    assert ids.parse("shoes/bulk-4") == {"catalog": "shoes", "job": "4"}
    assert ids.build(catalog="shoes", job="4") == "shoes/bulk-4"
    with pytest.raises(ValueError, match="not an identifier"):
        ids.parse("shoes/sku-1")
    with pytest.raises(ValueError, match="no identifier shape"):
        ids.build(catalog="shoes")


def test_a_literal_prefix_tells_a_new_resource_from_an_existing_one() -> None:
    ids = Identifiers("new:{token}", "{id}")
    assert ids.parse("new:0a1b") == {"token": "0a1b"}
    assert ids.parse("5f3e-77") == {"id": "5f3e-77"}


@pytest.mark.parametrize("key", TYPES)
def test_every_identifier_shape_round_trips(key: str) -> None:
    identifiers = resource_type_get(key).identifiers
    for shape in identifiers.shapes:
        parts = {name: f"{name}-7" for name in shape.parts}
        built = identifiers.build(**parts)
        assert identifiers.parse(built) == parts, shape.template
        assert identifiers.build(**identifiers.parse(built)) == built, shape.template


@pytest.mark.parametrize("key", TYPES)
def test_a_real_request_of_the_type_carries_one_of_its_identifier_shapes(
    db: None, key: str
) -> None:
    cr = _propose(key)
    identifiers = resource_type_get(key).identifiers
    assert identifiers.build(**identifiers.parse(cr.identifier)) == cr.identifier


def test_a_proposal_whose_identifier_has_none_of_its_types_shapes_is_refused(db: None) -> None:
    with pytest.raises(ChangeRequestError, match="'shoes' is not an identifier"):
        change_request_propose(
            actor=user_with_role(Role.EDITOR),
            resource_type="catalog_item",
            identifier="shoes",
            action="delete",
            payload={},
            base_snapshot={"name": "Shoe"},
        )
    assert not ChangeRequest.objects.exists()


# --- who takes part ------------------------------------------------------------------------


@pytest.mark.parametrize("key", TYPES)
def test_its_proposers_and_reviewers_may_see_its_requests(db: None, key: str) -> None:
    kind = resource_type_get(key)
    assert _viewers(kind), f"nobody may see {key} requests"
    for role in Role:
        if ROLE_CAPABILITIES[role] & {kind.propose, kind.review}:
            assert role in _viewers(kind), role
            assert change_request_may_view(user=user_with_role(role), resource_type=key), role


@pytest.mark.parametrize("key", TYPES)
def test_who_may_see_its_requests_is_what_the_object_access_table_says(key: str) -> None:
    # test_object_access walks real requests of each type through every view against that
    # table; this ties the table to what the type registers.
    assert _viewers(resource_type_get(key)) == EXAMPLES[key].viewers


@pytest.mark.parametrize("key", TYPES)
def test_every_url_it_names_is_in_the_access_matrix_and_open_to_its_viewers(key: str) -> None:
    kind = resource_type_get(key)
    if kind.review_url is None:
        return
    assert kind.review_url in MATRIX, "add the review page to MATRIX"
    assert _viewers(kind) <= MATRIX[kind.review_url].allowed
    reverse(kind.review_url, args=[1])


def test_default_approvals_come_from_the_registered_type(db: None) -> None:
    assert approvals_required(resource_type="catalog", action="delete") == 2
    assert approvals_required(resource_type="catalog", action="create") == 1
    assert approvals_required(resource_type="catalog_item", action="delete") == 1
    with registered("guarded_item", FakeBraze(), default_approvals={"update": 3}):
        assert approvals_required(resource_type="guarded_item", action="update") == 3
    # Gone with its app: the console's default.
    assert approvals_required(resource_type="guarded_item", action="update") == 1
    with pytest.raises(UnknownResourceType):
        resource_type_get("guarded_item")


# --- the views ask the registry --------------------------------------------------------------


def test_a_lock_without_a_local_apply_is_refused() -> None:
    with pytest.raises(ValueError, match="only a local type"):
        ResourceType(
            key="x",
            label="X",
            applier=FakeBraze(),
            identifiers=Identifiers("{id}"),
            lock=lambda identifier: None,
        )


@pytest.mark.parametrize("role", [*Role, None], ids=[*(r.value for r in Role), "no-role"])
def test_the_views_show_a_type_only_to_the_audience_it_registers(
    client_for: Callable[[Role | None], Client], role: Role | None
) -> None:
    """Only Reviewers: no real type has this audience, so the views cannot know it."""
    fake = FakeBraze(store={"shoe-1": {"id": "shoe-1", "name": "Shoe"}})
    with registered(
        "reviewers_only",
        fake,
        propose=Capability.REVIEW,
        review=Capability.REVIEW,
        view=frozenset({Capability.REVIEW}),
    ):
        cr = change_request_propose(
            actor=user_with_role(Role.REVIEWER),
            resource_type="reviewers_only",
            identifier="shoe-1",
            action="update",
            payload={"name": "Reviewed shoe"},
            base_snapshot=fake.read_current("shoe-1"),
            title="Rename the reviewers' shoe",
        )
        client = client_for(role)
        sees = role == Role.REVIEWER
        works_with_changes = role in {Role.EDITOR, Role.REVIEWER, Role.AUDITOR, Role.ADMIN}
        for view in ("all", "review"):
            response = client.get(reverse("changes:list"), {"view": view})
            if not works_with_changes:
                assert response.status_code == 403
                continue
            assert (cr.get_absolute_url() in response.content.decode()) == sees, view
        detail = client.get(reverse("changes:detail", args=[cr.pk]))
        assert detail.status_code == (200 if sees else 404 if works_with_changes else 403)
        act = client.post(reverse("changes:act", args=[cr.pk]), {"op": "comment", "comment": "ok"})
        acting = role in {Role.EDITOR, Role.REVIEWER, Role.ADMIN}
        assert act.status_code == (302 if sees else 404 if acting else 403)
        assert cr.comments.exists() == sees
        preview = client.get(reverse("templates_app:change_preview", args=[cr.pk]))
        assert preview.status_code == (404 if works_with_changes else 403)
        assert "Rename the reviewers" not in preview.content.decode()


def test_a_reviewer_of_a_reviewers_only_type_finds_it_awaiting_review(db: None) -> None:
    fake = FakeBraze(store={"shoe-1": {"id": "shoe-1", "name": "Shoe"}})
    with registered(
        "reviewers_only",
        fake,
        propose=Capability.REVIEW,
        review=Capability.REVIEW,
        view=frozenset({Capability.REVIEW}),
    ):
        author, other = user_with_role(Role.REVIEWER), user_with_role(Role.REVIEWER)
        cr = change_request_propose(
            actor=author,
            resource_type="reviewers_only",
            identifier="shoe-1",
            action="update",
            payload={"name": "Reviewed shoe"},
            base_snapshot=fake.read_current("shoe-1"),
        )
        client = Client()
        client.force_login(other)
        page = client.get(reverse("changes:list"), {"view": "review"}).content.decode()
        assert cr.get_absolute_url() in page
        admin = Client()
        admin.force_login(user_with_role(Role.ADMIN))
        assert admin.get(reverse("changes:detail", args=[cr.pk])).status_code == 404
        assert ChangeRequest.objects.filter(pk=cr.pk).exists()
