"""Each state machine moves only as its table allows, and only through states.py."""

import ast
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from catalog_bulk import states
from catalog_bulk.models import (
    BatchState,
    BulkBatch,
    BulkJob,
    BulkReadBack,
    BulkRow,
    JobState,
    ReadBackOutcome,
    ReadBackState,
    RowOp,
    RowOutcome,
)
from catalog_bulk.states import (
    InvalidTransition,
    batches_move,
    job_move,
    readback_move,
    rows_move,
    samples_move,
)
from catalogs.models import Catalog
from console.audit.models import AuditEntry

pytestmark = pytest.mark.django_db

APP = Path(states.__file__).parent


@pytest.fixture
def job(catalog: Catalog, editor: User) -> BulkJob:
    job: BulkJob = BulkJob.objects.create(
        catalog=catalog, operation="upsert", file_name="f.csv", file_path="", created_by=editor
    )
    return job


def _batch(job: BulkJob, state: str, seq: int = 1) -> BulkBatch:
    batch: BulkBatch = BulkBatch.objects.create(
        job=job, seq=seq, op=RowOp.CREATE, send_as=RowOp.CREATE, state=state, item_count=1
    )
    return batch


def _row(job: BulkJob, batch: BulkBatch | None, outcome: str, line: int = 1) -> BulkRow:
    row: BulkRow = BulkRow.objects.create(
        job=job, line=line, item_id=f"i-{line}", op=RowOp.CREATE, batch=batch, outcome=outcome
    )
    return row


def test_every_state_of_every_machine_has_a_row_in_its_table() -> None:
    for table, choices in (
        (states.JOB_MOVES, JobState),
        (states.BATCH_MOVES, BatchState),
        (states.ROW_MOVES, RowOutcome),
        (states.READBACK_MOVES, ReadBackState),
        (states.SAMPLE_MOVES, ReadBackOutcome),
    ):
        assert set(table) == set(choices.values)
        assert all(set(targets) <= set(choices.values) for targets in table.values())


def test_a_job_moves_writes_its_fields_and_audits_the_step(job: BulkJob) -> None:
    assert job_move(job, JobState.READY, columns=["id"])
    assert job_move(
        job, JobState.CANCELLED, actor=states.PIPELINE_ACTOR, action="cancelled", data={"x": 1}
    )
    job.refresh_from_db()
    assert (job.state, job.columns) == (JobState.CANCELLED, ["id"])
    entry = AuditEntry.objects.get(action="catalog_bulk.cancelled")
    assert entry.data["job"] == job.pk
    assert entry.data["x"] == 1


def test_a_job_refuses_a_move_its_table_does_not_list(job: BulkJob) -> None:
    job_move(job, JobState.READY)
    job_move(job, JobState.CANCELLED)
    with pytest.raises(InvalidTransition):
        job_move(job, JobState.RUNNING)
    with pytest.raises(InvalidTransition):
        job_move(job, JobState.DONE, from_=(JobState.PARSING,))
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED


def test_a_job_another_worker_moved_meanwhile_is_left_alone_and_nothing_is_audited(
    job: BulkJob,
) -> None:
    stale = BulkJob.objects.get(pk=job.pk)
    assert job_move(job, JobState.CANCELLED)
    assert not job_move(stale, JobState.READY, action="parsed")
    assert BulkJob.objects.get(pk=job.pk).state == JobState.CANCELLED
    assert not AuditEntry.objects.filter(action="catalog_bulk.parsed").exists()


def test_a_batch_refuses_a_move_its_table_does_not_list(job: BulkJob) -> None:
    accepted = _batch(job, BatchState.ACCEPTED)
    with pytest.raises(InvalidTransition):
        batches_move(
            BulkBatch.objects.filter(pk=accepted.pk), BatchState.IN_FLIGHT, from_=("accepted",)
        )


def test_batches_move_only_from_the_states_that_may_reach_the_target(job: BulkJob) -> None:
    pending, accepted = _batch(job, BatchState.PENDING, 1), _batch(job, BatchState.ACCEPTED, 2)
    assert batches_move(BulkBatch.objects.filter(job=job), BatchState.CANCELLED) == 1
    pending.refresh_from_db()
    accepted.refresh_from_db()
    assert (pending.state, accepted.state) == (BatchState.CANCELLED, BatchState.ACCEPTED)


def test_a_row_moves_only_as_its_table_allows(job: BulkJob) -> None:
    batch = _batch(job, BatchState.IN_FLIGHT)
    pending, accepted = _row(job, batch, RowOutcome.PENDING, 1), _row(job, batch, "accepted", 2)
    with pytest.raises(InvalidTransition):
        rows_move(BulkRow.objects.filter(job=job), RowOutcome.PENDING, from_=(RowOutcome.ACCEPTED,))
    assert rows_move(BulkRow.objects.filter(job=job), RowOutcome.FAILED) == 1
    pending.refresh_from_db()
    accepted.refresh_from_db()
    assert (pending.outcome, accepted.outcome) == (RowOutcome.FAILED, RowOutcome.ACCEPTED)


def test_a_read_back_refuses_a_move_its_table_does_not_list(job: BulkJob) -> None:
    with pytest.raises(InvalidTransition):
        readback_move(job, ReadBackState.READING)  # never planned
    assert readback_move(job, ReadBackState.SCHEDULED)
    assert readback_move(job, ReadBackState.READING)
    assert readback_move(job, ReadBackState.DONE, action="read_back")
    with pytest.raises(InvalidTransition):
        readback_move(job, ReadBackState.FAILED)
    assert BulkJob.objects.get(pk=job.pk).readback_state == ReadBackState.DONE
    assert AuditEntry.objects.filter(action="catalog_bulk.read_back").count() == 1


def test_a_sample_read_once_keeps_what_was_found(job: BulkJob) -> None:
    row = _row(job, None, RowOutcome.ACCEPTED)
    sample = BulkReadBack.objects.create(job=job, row=row, item_id=row.item_id)
    samples = BulkReadBack.objects.filter(pk=sample.pk)
    assert samples_move(samples, ReadBackOutcome.MATCH) == 1
    assert samples_move(samples, ReadBackOutcome.ERROR) == 0
    assert BulkReadBack.objects.get(pk=sample.pk).outcome == ReadBackOutcome.MATCH


# Writes of a machine's field outside states.py: keyword arguments of .update()/.create()
# and attribute assignments. Filters (.filter(state=…)) are reads and are not flagged.
_MACHINE_FIELDS = {"state", "readback_state", "outcome"}
_WRITES = {"update", "create", "update_or_create", "get_or_create", "bulk_update"}


def _state_writes(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        func = node.func if isinstance(node, ast.Call) else None
        if isinstance(node, ast.Call) and isinstance(func, ast.Attribute) and func.attr in _WRITES:
            found += [
                f"{path.name}:{node.lineno} {func.attr}({kw.arg}=…)"
                for kw in node.keywords
                if kw.arg in _MACHINE_FIELDS
            ]
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Attribute) and name.attr in _MACHINE_FIELDS:
                    found.append(f"{path.name}:{node.lineno} .{name.attr} = …")
                # changes["state"] = …, for a later .update(**changes)
                key = name.slice if isinstance(name, ast.Subscript) else None
                if isinstance(key, ast.Constant) and key.value in _MACHINE_FIELDS:
                    found.append(f"{path.name}:{node.lineno} [{key.value!r}] = …")
    return found


def test_no_module_but_states_writes_a_state() -> None:
    modules = [p for p in APP.glob("*.py") if p.name != "states.py"]
    assert len(modules) > 10
    assert [w for p in modules for w in _state_writes(p)] == []


def test_the_scan_finds_a_state_written_outside_states(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "BulkJob.objects.filter(pk=1, state='x').update(state='y')\n"
        "job.readback_state, job.due = 'done', None\n"
        "BulkRow.objects.create(outcome='accepted')\n"
        "changes['state'] = 'failed'\n"
    )
    assert len(_state_writes(sample)) == 4


def test_the_app_s_sql_names_no_state_literally() -> None:
    quoted = {
        f"'{value}'"
        for choices in (JobState, BatchState, RowOutcome)
        for value in choices.values
        if value
    }
    for path in APP.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if "SELECT" in text or "INSERT" in text or "UPDATE " in text:
                    assert not [q for q in quoted if q in text], f"{path.name}:{node.lineno}"
