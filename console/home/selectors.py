"""Reads behind the home page, each bounded and each limited to what the person may see.

Every part is None when the person's capabilities do not include it (a Viewer has no review
queue), so the template shows what is there and the view decides nothing twice.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count
from django.utils import timezone

from console.audit.events import EXTERNAL_CHANGES
from console.audit.models import AuditEntry
from console.audit.sentences import Sentence, audit_sentences
from console.changes.models import ChangeRequest, ChangeState
from console.changes.resource_types import resource_types_registered
from console.changes.selectors import (
    CHANGE_REQUEST_READERS,
    change_requests_awaiting_review,
    change_requests_of,
    change_requests_visible,
)
from console.home.models import HomeMark
from console.home.sources import JobProgress, home_jobs_open_of, home_jobs_paused
from console.roles import Capability, user_capabilities, user_workspaces_scoped

SHOWN = 5  # rows per part; each part links to its whole list
# Without a mark yet, "since I last looked" starts this long ago.
FIRST_LOOK = timedelta(days=7)
# Counting stops here: "100+" says enough, and the count stays cheap however many there are.
COUNT_CAP = 100

# The states of my own requests worth a number on the home, in the order a request goes.
MY_STATES = (
    ChangeState.DRAFT,
    ChangeState.PENDING,
    ChangeState.APPROVED,
    ChangeState.APPLYING,
    ChangeState.CONFLICT,
    ChangeState.FAILED,
)
NEEDS_A_PERSON = (ChangeState.FAILED, ChangeState.CONFLICT)


@dataclass(frozen=True, slots=True)
class StateCount:
    state: str
    label: str
    count: int


@dataclass(frozen=True, slots=True)
class Reviews:
    waiting: list[ChangeRequest]  # oldest first: the longest wait leads
    total: int


@dataclass(frozen=True, slots=True)
class MyRequests:
    states: list[StateCount]
    recent: list[ChangeRequest]


@dataclass(frozen=True, slots=True)
class Applied:
    recent: list[ChangeRequest]
    total: int


@dataclass(frozen=True, slots=True)
class External:
    """Changes made in Braze outside the console since the person's mark."""

    entries: list[tuple[AuditEntry, Sentence]]
    count: int  # capped at COUNT_CAP + 1 ("100+")
    after_seq: int | None  # the mark; None: no mark yet, the last FIRST_LOOK instead
    since: str  # the first day shown without a mark (YYYY-MM-DD), for the audit filter
    newest_seq: int | None  # what "mark as seen" records

    @property
    def capped(self) -> bool:
        return self.count > COUNT_CAP


@dataclass(frozen=True, slots=True)
class Attention:
    states: list[StateCount]  # failed and conflicting requests the person may see
    paused_jobs: Sequence[JobProgress]


@dataclass(frozen=True, slots=True)
class Home:
    reviews: Reviews | None
    mine: MyRequests | None
    my_jobs: Sequence[JobProgress] | None
    applied: Applied | None
    external: External | None
    attention: Attention | None


def _state_counts(rows: dict[str, int], states: tuple[ChangeState, ...]) -> list[StateCount]:
    return [StateCount(state.value, state.label, rows.get(state.value, 0)) for state in states]


def _reviews(user: AbstractBaseUser) -> Reviews:
    queue = change_requests_awaiting_review(user=user)
    waiting = list(queue.select_related("author").order_by("submitted_at", "id")[:SHOWN])
    total = len(waiting) if len(waiting) < SHOWN else queue.count()
    return Reviews(waiting=waiting, total=total)


def _mine(user: AbstractBaseUser) -> MyRequests:
    requests = change_requests_of(user=user)
    rows = dict(
        requests.filter(state__in=MY_STATES).values_list("state").annotate(n=Count("id")).order_by()
    )
    recent = list(requests.order_by("-updated_at", "-id")[:SHOWN])
    return MyRequests(states=_state_counts(rows, MY_STATES), recent=recent)


def _applied(user: AbstractBaseUser) -> Applied:
    applied = change_requests_visible(user=user).filter(state=ChangeState.APPLIED)
    recent = list(applied.select_related("author").order_by("-applied_at", "-id")[:SHOWN])
    total = len(recent) if len(recent) < SHOWN else applied.count()
    return Applied(recent=recent, total=total)


def _external(user: AbstractBaseUser) -> External:
    mark = HomeMark.objects.filter(user_id=user.pk).values_list("external_seen_seq", flat=True)
    after = mark.first()
    since = timezone.now() - FIRST_LOOK
    entries = AuditEntry.objects.filter(action__in=sorted(EXTERNAL_CHANGES))
    if after is not None:
        entries = entries.filter(seq__gt=after)
    else:
        entries = entries.filter(occurred_at__gte=since)
    newest = list(entries.order_by("-seq")[:SHOWN])
    count = len(newest)
    if count == SHOWN:
        count = entries.order_by()[: COUNT_CAP + 1].count()
    sentences = audit_sentences(newest)
    return External(
        entries=[(entry, sentences[entry.seq]) for entry in newest],
        count=count,
        after_seq=after,
        since=since.date().isoformat(),
        newest_seq=newest[0].seq if newest else None,
    )


def _attention(user: AbstractBaseUser) -> Attention:
    rows = dict(
        change_requests_visible(user=user)
        .filter(state__in=NEEDS_A_PERSON)
        .values_list("state")
        .annotate(n=Count("id"))
        .order_by()
    )
    return Attention(
        states=_state_counts(rows, NEEDS_A_PERSON), paused_jobs=home_jobs_paused(limit=SHOWN)
    )


def home_for(*, user: AbstractBaseUser) -> Home:
    """What the home page shows this person, part by part as their capabilities allow."""
    caps = user_capabilities(user)
    kinds = resource_types_registered()
    # Reviews are counted per workspace (by the roles held there): someone who reviews only
    # in production has a queue though their console-wide roles review nothing.
    review_caps = caps.union(
        *(user_capabilities(user, key) for key in user_workspaces_scoped(user))
    )
    reviews = any(kind.review in review_caps for kind in kinds)
    proposes = any(kind.propose in caps for kind in kinds)
    reads_requests = bool(caps & CHANGE_REQUEST_READERS)
    return Home(
        reviews=_reviews(user) if reviews else None,
        mine=_mine(user) if proposes else None,
        my_jobs=home_jobs_open_of(user=user, limit=SHOWN) if Capability.PROPOSE in caps else None,
        applied=_applied(user) if reads_requests else None,
        # Changes to content and catalogs, which everyone who browses may read.
        external=_external(user) if Capability.BROWSE in caps else None,
        attention=_attention(user) if reads_requests else None,
    )
