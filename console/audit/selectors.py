"""Reads of the audit trail: one filter used by the list, the export and the benchmark."""

import hmac
import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, F, Func, Q, QuerySet, Subquery
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from console.audit import hashing
from console.audit.checkpoints import checkpoint_as_dict, checkpoint_file_path
from console.audit.events import (
    AUDIT_PERSONAL_ERASED,
    AUDIT_VERIFIED,
    AUDIT_VERIFY_REQUESTED,
    ERASABLE_FIELDS,
    EXTERNAL_CHANGES,
    erasable_value,
)
from console.audit.models import AuditCheckpoint, AuditEntry, AuditPersonal
from console.audit.verify import audit_entry_verifies, problem_in_words

# The columns the free-text search looks in, and the names entries keep in their data (the
# resource's name at the time, the change request's title): each has a trigram index
# (migrations 0009 and 0010).
SEARCHED_COLUMNS = ("action", "actor_name", "resource_id", "resource_type")
SEARCHED_DATA_KEYS = ("resource_name", "name", "title")
OUTCOMES = [("", "Any"), ("success", "Success"), ("failure", "Failure"), ("refused", "Refused")]


class AuditFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=200)
    actor = forms.CharField(label="Actor", required=False, max_length=150)
    action = forms.CharField(label="Action", required=False, max_length=80)
    resource = forms.CharField(label="Resource", required=False, max_length=500)
    change_request = forms.IntegerField(label="Change request", required=False, min_value=1)
    outcome = forms.ChoiceField(label="Outcome", required=False, choices=OUTCOMES)
    date_from = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    outside = forms.BooleanField(
        label="Only changes made in Braze outside the console", required=False
    )
    # The home page's "since I last looked": entries after the newest one the person saw.
    after = forms.IntegerField(label="After entry", required=False, min_value=0)

    def filters(self) -> dict[str, Any]:
        if not self.is_valid():
            return {}
        return {k: v for k, v in self.cleaned_data.items() if v not in (None, "", False)}


def _day(value: Any, end: bool) -> datetime:
    return timezone.make_aware(datetime.combine(value, time.max if end else time.min))


def _seq_at(condition: Q, order: str) -> int | None:
    seq: int | None = (
        AuditEntry.objects.filter(condition).order_by(order).values_list("seq", flat=True).first()
    )
    return seq


def audit_entries(*, filters: dict[str, Any]) -> QuerySet[AuditEntry]:
    """Entries matching the filters, newest first. Every filter uses an index."""
    qs = AuditEntry.objects.all()
    if actor := filters.get("actor"):
        qs = qs.filter(actor_name=actor)
    if action := filters.get("action"):
        # "braze.write" is one action (served by the (action, seq) index); a family name
        # without a dot ("change_request") selects all its actions.
        if "." in action.rstrip("."):
            qs = qs.filter(action=action)
        else:
            qs = qs.filter(action__startswith=f"{action.rstrip('.')}.")
    if resource := filters.get("resource"):
        qs = qs.filter(Q(resource_id=resource) | Q(resource_type=resource))
    if filters.get("outside"):
        qs = qs.filter(action__in=sorted(EXTERNAL_CHANGES))
    if (after := filters.get("after")) is not None:
        qs = qs.filter(seq__gt=after)
    if (cr := filters.get("change_request")) is not None:
        qs = qs.filter(change_request_id=cr)
    if outcome := filters.get("outcome"):
        qs = qs.filter(outcome=outcome)
    if workspace := filters.get("workspace"):
        # Entries of no workspace (signing in, those written before workspaces) belong to all.
        qs = qs.filter(workspace__in=[workspace, ""])
    if date_from := filters.get("date_from"):
        start = _day(date_from, end=False)
        qs = qs.filter(occurred_at__gte=start)
        # Entries are timestamped under the chain lock, so time order is seq order: a
        # seq bound lets PostgreSQL walk the primary key instead of sorting a day's rows.
        first = _seq_at(Q(occurred_at__gte=start), "occurred_at")
        qs = qs.filter(seq__gte=first) if first is not None else qs.none()
    if date_to := filters.get("date_to"):
        end = _day(date_to, end=True)
        qs = qs.filter(occurred_at__lte=end)
        last = _seq_at(Q(occurred_at__lte=end), "-occurred_at")
        qs = qs.filter(seq__lte=last) if last is not None else qs.none()
    if q := filters.get("q"):
        qs = qs.filter(_matching(q))
    return qs.order_by("-seq")


def _matching(q: str) -> Q:
    # Each column has a trigram index on this expression (migrations 0009 and 0010).
    matches = Q()
    for column in SEARCHED_COLUMNS:
        matches |= Q(**{f"{column}__icontains": q})
    for key in SEARCHED_DATA_KEYS:
        matches |= Q(**{f"data__{key}__icontains": q})
    return matches


# How many of the newest entries (those the other filters keep) a search reads row by row
# before it asks the trigram indexes: enough for a common term to fill a page at once, few
# enough to read in a few milliseconds. A term found in the first window but too sparsely
# to fill the page is looked for once more in a window as long as its density says the page
# needs, up to SEARCH_WINDOW_MAX (gathering its every match from the indexes would cost more).
SEARCH_WINDOW = 1_000
SEARCH_WINDOW_MAX = 10_000
# While the matches of a search are gathered, PostgreSQL may only read bitmaps of indexes:
# a sequential scan or an index walk filtering every row is what a wrong estimate of the
# matches picks (at ten million entries it walked the primary key for a rare term).
_BITMAPS_ONLY = ("enable_seqscan", "enable_indexscan", "enable_indexonlyscan")


def audit_entries_page(
    *, filters: dict[str, Any], before: int | None = None, size: int
) -> list[AuditEntry]:
    """The first `size` entries of `audit_entries(filters)` older than `before`: the same
    rows in the same order, in plans whose cost does not hang on PostgreSQL's estimate of
    how many entries a free-text term matches.

    Without a term that is the list's own query. With one, the newest entries the other
    filters keep are read and matched in a bounded window (a common term fills the page
    there); if the window holds all of them the page is complete, else the term's matches
    are gathered from the trigram indexes alone, then the newest taken.
    """
    unbounded = audit_entries(filters={k: v for k, v in filters.items() if k != "q"})
    others = unbounded if before is None else unbounded.filter(seq__lt=before)
    if not (q := filters.get("q")):
        return list(others[:size])
    matches = _matching(q)
    found, complete = _matching_in_window(others, matches, size, SEARCH_WINDOW)
    if found and not complete:
        # The page needs about size / density entries; a margin of half again.
        wanted = SEARCH_WINDOW * size * 3 // (2 * len(found))
        if wanted <= SEARCH_WINDOW_MAX:
            found, complete = _matching_in_window(others, matches, size, wanted)
    if complete:
        return found
    return _matching_by_index(unbounded.filter(matches), before, size)


def _matching_in_window(
    others: QuerySet[AuditEntry], matches: Q, size: int, window: int
) -> tuple[list[AuditEntry], bool]:
    """The newest `size` matches among the newest `window` entries of `others`, and whether
    they are all there is: the page is full, or `others` holds no entry beyond the window."""
    window_sql, window_params = others.query.sql_with_params()
    condition = AuditEntry.objects.filter(matches).query
    where_sql, where_params = condition.get_compiler(using=others.db).compile(condition.where)
    # The window's LIMIT keeps PostgreSQL from moving the term's condition into it (where it
    # could choose to walk every entry for it). One entry past the window comes along, with
    # its place, to tell whether there are more.
    sql = (
        "SELECT * FROM (SELECT *, row_number() OVER ("  # noqa: S608  # compiled SQL only
        f'ORDER BY "audit_entry"."seq" DESC) AS place FROM ({window_sql} LIMIT %s)'
        f' AS "audit_entry") AS "audit_entry" WHERE place > %s OR {where_sql}'
        ' ORDER BY "audit_entry"."seq" DESC LIMIT %s'
    )
    params = [*window_params, window + 1, window, *where_params, size + 1]
    rows = list(AuditEntry.objects.raw(sql, params))
    # raw() sets each column the model lacks as an attribute of the instance.
    found = [row for row in rows if vars(row)["place"] <= window]
    return found[:size], len(found) >= size or len(found) == len(rows)


def _matching_by_index(
    entries: QuerySet[AuditEntry], before: int | None, size: int
) -> list[AuditEntry]:
    # MATERIALIZED: the matches are gathered whole (bitmaps, see _BITMAPS_ONLY), and only
    # then ordered and cut; the keyset bound stays outside so no index serves it instead.
    matches_sql, params = entries.order_by().values("seq").query.sql_with_params()
    sql = (
        f"WITH matches AS MATERIALIZED ({matches_sql})"  # noqa: S608  # compiled SQL only
        " SELECT seq FROM matches WHERE seq < %s ORDER BY seq DESC LIMIT %s"
    )
    connection = connections[entries.db]
    nested = connection.in_atomic_block
    with transaction.atomic(using=entries.db), connection.cursor() as cursor:
        cursor.execute("; ".join(f"SET LOCAL {name} = off" for name in _BITMAPS_ONLY))
        cursor.execute(sql, [*params, before if before is not None else 2**63 - 1, size])
        seqs = [row[0] for row in cursor.fetchall()]
        if nested:  # SET LOCAL lasts until the caller's transaction ends
            cursor.execute("; ".join(f"SET LOCAL {name} TO DEFAULT" for name in _BITMAPS_ONLY))
    return list(AuditEntry.objects.filter(seq__in=seqs).order_by("-seq"))


# Erasure of personal data ------------------------------------------------------------

# Where an erasable part can hold a value of kind `field`: under that key at any depth
# (a user's `email`), or as the before/after of a diff row about that field.
_UNDER_KEY = 'lax $.**."{field}"'
_DIFF_ROWS = "lax $.** ? (@.field == $field)"
_MATCH = (
    "(EXISTS (SELECT 1 FROM jsonb_path_query(<data>, %s::jsonpath, '{{}}', true)"
    " AS found(v) WHERE {same})"
    " OR EXISTS (SELECT 1 FROM jsonb_path_query(<data>, %s::jsonpath,"
    " jsonb_build_object('field', %s::text), true) AS r(item),"
    " LATERAL (VALUES (r.item -> 'before'), (r.item -> 'after')) AS side(v) WHERE {same}))"
)
_MATCH_EMAIL = _MATCH.format(same="jsonb_typeof(v) = 'string' AND lower(v #>> '{}') = %s")
_MATCH_EXACT = _MATCH.format(same="v = to_jsonb(%s::text)")


class _HoldsPersonal(Func):
    """True when the erasable part holds a value of one kind (see _MATCH)."""

    output_field = BooleanField()

    def __init__(self, *, field: str, value: str) -> None:
        super().__init__(F("data"))
        self.kind, self.value = field, value

    def as_sql(  # type: ignore[override]  # the template and params are its own
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, tuple[Any, ...]]:
        data, data_params = compiler.compile(self.source_expressions[0])
        sql = _MATCH_EMAIL if self.kind == "email" else _MATCH_EXACT
        # The SQL is fixed but for the column (aliased in subqueries); the value, the
        # field and the paths (built from a field name checked against a fixed list)
        # are parameters.
        return sql.replace("<data>", data), (
            *data_params,
            _UNDER_KEY.format(field=self.kind),
            self.value,
            *data_params,
            _DIFF_ROWS,
            self.kind,
            self.value,
        )


def audit_personal_matching(*, field: str, value: str) -> QuerySet[AuditPersonal]:
    """Erasable parts that hold `value` as `field` (email addresses in any case)."""
    if field not in ERASABLE_FIELDS:  # also keeps the jsonpath free of input
        raise ValueError(f"{field!r} is not a kind of personal data the audit trail keeps")
    value = erasable_value(field=field, value=value)
    return AuditPersonal.objects.filter(_HoldsPersonal(field=field, value=value))


@dataclass(frozen=True, slots=True)
class ErasurePreview:
    count: int
    sample: list[AuditEntry]  # the newest few, to show seq, time and action only
    # Entries naming this user as their actor: the actor is chained and stays.
    as_actor: int = 0


def audit_personal_erasure_preview(*, field: str, value: str, sample: int = 10) -> ErasurePreview:
    matching = audit_personal_matching(field=field, value=value).values("pk")
    entries = AuditEntry.objects.filter(seq__in=Subquery(matching)).order_by("-seq")
    as_actor = 0
    if field == "username":
        as_actor = AuditEntry.objects.filter(actor_name=value.strip()).count()
    return ErasurePreview(
        count=entries.count(),
        sample=list(entries.only("seq", "occurred_at", "action")[:sample]),
        as_actor=as_actor,
    )


def audit_personal_erasure_of(*, entry: AuditEntry) -> AuditEntry | None:
    """The erasure that removed this entry's personal data, if one did."""
    if not entry.personal_digest:
        return None
    erasure: AuditEntry | None = (
        AuditEntry.objects.filter(
            action=AUDIT_PERSONAL_ERASED, seq__gt=entry.seq, data__seqs__contains=[entry.seq]
        )
        .order_by("seq")
        .first()
    )
    return erasure


# Verification runs ---------------------------------------------------------------------

# A request with no result after this long was lost (no worker, or it died mid-walk).
VERIFY_STALE_AFTER = timedelta(minutes=30)


def _latest_request() -> AuditEntry | None:
    request: AuditEntry | None = (
        AuditEntry.objects.filter(action=AUDIT_VERIFY_REQUESTED).order_by("-seq").first()
    )
    return request


def _answered(request: AuditEntry) -> bool:
    # Only by a result the console wrote (one forged without the key does not count).
    return audit_verification_result(request_seq=request.seq) is not None


def audit_verification_result(*, request_seq: int) -> AuditEntry | None:
    """The recorded result of this request, if the console wrote one.

    Only an entry whose keyed hash verifies counts: a result row forged in the database
    ahead of the walk would otherwise make the real walk's finding be thrown away.
    """
    candidates = AuditEntry.objects.filter(
        action=AUDIT_VERIFIED, seq__gt=request_seq, data__request_seq=request_seq
    ).order_by("seq")
    return next((entry for entry in candidates[:10] if audit_entry_verifies(entry)), None)


def audit_verification_pending() -> AuditEntry | None:
    """The request entry of a verification still queued or running, if any."""
    request = _latest_request()
    if request is None or _answered(request):
        return None
    if timezone.now() - request.occurred_at > VERIFY_STALE_AFTER:
        return None
    return request


def audit_verification_stalled() -> AuditEntry | None:
    """The newest request if it was never answered and is too old to still be running."""
    request = _latest_request()
    if request is None or _answered(request):
        return None
    if timezone.now() - request.occurred_at <= VERIFY_STALE_AFTER:
        return None
    return request


@dataclass(frozen=True, slots=True)
class VerificationResult:
    entry: AuditEntry
    ok: bool
    summary: str
    problems: list[str]
    warnings: list[str]
    seconds: float


def verification_summary(data: dict[str, Any], *, ok: bool) -> str:
    """A recorded verification in plain words."""
    if error := data.get("error"):
        return f"The verification could not finish: {error}. Ask again, or see the worker log."
    entries = int(data.get("entries_checked") or 0)
    if ok:
        anchor, signed_at = data.get("anchor_seq"), data.get("anchor_created_at")
        if anchor and signed_at:
            when = parse_datetime(str(signed_at))
            signed = when.strftime("%Y-%m-%d %H:%M:%S UTC") if when else signed_at
            return (
                f"All {entries:,} entries verify up to the checkpoint at entry "
                f"#{int(anchor):,}, signed {signed}."
            )
        if entries == 0:
            return "The trail is empty: there is nothing to verify yet."
        return f"All {entries:,} entries verify; no signed checkpoint covers them yet."
    reason = data.get("reason")
    return problem_in_words(str(reason)) if reason else "The trail does not verify."


FORGED_RESULT = (
    "This result does not verify: the console did not write it (its hash does not match "
    "its content), so it says nothing about the trail."
)


def audit_verification_results(*, limit: int = 5) -> list[VerificationResult]:
    """The newest recorded verifications, in words."""
    results = []
    for entry in AuditEntry.objects.filter(action=AUDIT_VERIFIED).order_by("-seq")[:limit]:
        data = entry.data if isinstance(entry.data, dict) else {}
        genuine = audit_entry_verifies(entry)
        ok = genuine and entry.outcome == "success"
        summary = verification_summary(data, ok=ok) if genuine else FORGED_RESULT
        problems = [problem_in_words(str(p)) for p in data.get("problems") or []]
        results.append(
            VerificationResult(
                entry=entry,
                ok=ok,
                summary=summary,
                problems=[p for p in problems if p != summary],
                warnings=[str(w) for w in data.get("warnings") or []],
                seconds=int(data.get("duration_ms") or 0) / 1000,
            )
        )
    return results


# Checkpoints ------------------------------------------------------------------------------


class FileCopy(StrEnum):
    MATCHES = "matches"
    DIFFERS = "differs"
    MISSING = "missing"


class Signature(StrEnum):
    VERIFIES = "verifies"
    FAILS = "does not verify"
    OTHER_KEY = "another key"
    # The web is not given the signer's key: the file copy is what it can compare.
    NOT_CHECKED = "checked by the signer only"


@dataclass(frozen=True, slots=True)
class CheckpointCheck:
    file_copy: FileCopy
    signature: Signature


def audit_checkpoints() -> QuerySet[AuditCheckpoint]:
    return AuditCheckpoint.objects.all()


def _file_lines(
    path: Path, signatures: set[str], times: set[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Lines of the checkpoint file naming one of these signatures or times.

    The file grows by one line per checkpoint (every few minutes, for years): it is
    streamed and only the lines wanted are kept, so a page costs one pass and no memory.
    """
    by_signature: dict[str, str] = {}
    by_time: dict[str, str] = {}
    if not path.exists():
        return by_signature, by_time
    with path.open(encoding="utf-8") as lines:
        for raw in lines:
            line = raw.strip()
            try:
                record = json.loads(line) if _names_any(line, signatures, times) else None
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            if str(record.get("signature")) in signatures:
                by_signature[str(record["signature"])] = line
            if str(record.get("created_at")) in times:
                by_time[str(record["created_at"])] = line
    return by_signature, by_time


def _names_any(line: str, signatures: set[str], times: set[str]) -> bool:
    # A cheap look before parsing: the key order of the canonical form is fixed.
    at = line.rfind('"signature":"')
    if at >= 0 and line[at + 13 : at + 77] in signatures:
        return True
    at = line.find('"created_at":"')
    return at >= 0 and line[at + 14 : line.find('"', at + 14)] in times


def audit_checkpoint_checks(*, checkpoints: list[AuditCheckpoint]) -> dict[int, CheckpointCheck]:
    """For each checkpoint: does the copy outside the database match, does it verify?

    Only the signing key's public id is compared and shown; the key stays in settings.
    """
    key = settings.AUDIT_CHECKPOINT_KEY
    current_key = hashing.key_id(key) if key else None
    as_dicts = {cp.pk: checkpoint_as_dict(cp) for cp in checkpoints}
    by_signature, by_time = _file_lines(
        checkpoint_file_path(),
        {cp.signature for cp in checkpoints},
        {d["created_at"] for d in as_dicts.values()},
    )
    checks = {}
    for cp in checkpoints:
        record = as_dicts[cp.pk]
        line = hashing.canonical_json(record)
        if by_signature.get(cp.signature) == line:
            copy = FileCopy.MATCHES
        elif cp.signature in by_signature or record["created_at"] in by_time:
            copy = FileCopy.DIFFERS
        else:
            copy = FileCopy.MISSING
        if not key:
            signature = Signature.NOT_CHECKED
        elif cp.key_id != current_key:
            signature = Signature.OTHER_KEY
        else:
            message = hashing.checkpoint_message(
                created_at=cp.created_at,
                last_seq=cp.last_seq,
                head_hash=cp.head_hash,
                entry_count=cp.entry_count,
            )
            valid = hmac.compare_digest(hashing.checkpoint_sign(key, message), cp.signature)
            signature = Signature.VERIFIES if valid else Signature.FAILS
        checks[cp.pk] = CheckpointCheck(copy, signature)
    return checks
