import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from celery import Celery
from celery.signals import setup_logging, worker_process_init
from django_structlog.celery.steps import DjangoStructLogInitStep
from kombu import Queue

from console.audit.context import Origin, audit_origin
from console.workspaces import Workspace, workspace_default, workspace_get, workspace_override

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

# Queues, so that one kind of work never waits behind another (docs/deploy.md, "Queues"):
# production runs a worker (or several) per queue group; `scripts/run` and the tests run
# workers that consume them all.
INTERACTIVE = "interactive"  # someone is waiting: an approved change's apply, a list refresh
BULK = "bulk"  # bulk jobs: parsing uploads, the senders, the read-backs
SYNC = "sync"  # reading Braze into the mirror: catalog and content syncs
DEFAULT = "default"  # short housekeeping (sweeps) and long one-offs nobody waits on by the second
QUEUES = (INTERACTIVE, BULK, SYNC, DEFAULT)

# Every task is named here (tests/console/test_celery.py holds that): a new task that is
# not falls into DEFAULT, which no bulk job or sync can fill.
TASK_QUEUES: dict[str, str] = {
    "console.changes.tasks.change_request_apply_task": INTERACTIVE,
    "catalogs.tasks.catalog_list_refresh_task": INTERACTIVE,
    # Someone's integration waits on it; a few seconds at most per attempt.
    "console.notifications.tasks.webhook_deliver_task": INTERACTIVE,
    # catalog_bulk/tasks.py: registered under these names so queued messages still find them.
    "catalogs.bulk.tasks.bulk_parse_task": BULK,
    "catalogs.bulk.tasks.bulk_send_task": BULK,
    "catalogs.bulk.tasks.bulk_readback_task": BULK,
    "catalogs.tasks.catalog_sync_task": SYNC,
    "catalogs.tasks.catalog_sync_schedule_task": SYNC,
    "templates_app.tasks.content_sync_task": SYNC,
    # The sweepers re-enqueue lost work onto the queues above; they run in well under a second.
    "console.changes.tasks.change_requests_sweep_task": DEFAULT,
    "catalogs.bulk.tasks.bulk_sweep_task": DEFAULT,
    "console.notifications.tasks.webhook_deliveries_sweep_task": DEFAULT,
    # Hands due scheduled changes to change_request_apply_task (INTERACTIVE): a query.
    "console.changes.tasks.change_requests_apply_due_task": DEFAULT,
    # Deletes old uploads and job detail: housekeeping nobody waits on.
    "catalogs.bulk.tasks.bulk_retention_task": DEFAULT,
    "console.audit.tasks.signin_failures_record_task": DEFAULT,
    # Walks the whole trail, or pages through SCIM: minutes, and the person is told to wait.
    "console.audit.tasks.audit_verify_task": DEFAULT,
    "users_admin.tasks.access_review_lookup_task": DEFAULT,
}

app = Celery("console")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in QUEUES]
app.conf.task_default_queue = DEFAULT
app.conf.task_routes = {name: {"queue": queue} for name, queue in TASK_QUEUES.items()}
app.autodiscover_tasks()
# Each task's log lines carry the request id (and actor) of the request that queued it.
app.steps["worker"].add(DjangoStructLogInitStep)


def task_enqueue(name: str, /, *args: object, countdown: float | None = None) -> None:
    """Queue the task registered under `name` (its dotted path, a key of TASK_QUEUES).

    Services queue their tasks by name instead of importing the tasks module: a task imports
    the service it runs (tasks are an outer layer, like views), so an import back would close
    a cycle. tests/console/test_celery.py checks every name and argument count given here
    against the task itself, as an import would have.
    """
    if name not in TASK_QUEUES:
        raise LookupError(f"{name} is not a task of the console (console.celery.TASK_QUEUES)")
    if name not in app.tasks:
        # A web process imports no tasks module of its own: discover them on the first send.
        app.autodiscover_tasks(force=True)
    task = app.tasks[name]
    if countdown is None:
        task.delay(*args)
    else:
        task.apply_async(args=args, countdown=countdown)


@contextmanager
def task_workspace(via: str, workspace: str | None) -> Iterator[Workspace]:
    """Run a task's body in the workspace its message names, by key (never a secret): its
    Braze client, its limiter, the rows it writes and its audit entries' workspace.

    A message without one was queued before tasks named their workspace: it meant the
    default one. A key no longer configured is a ``LookupError``: doing the work in some
    other workspace would send one workspace's data with another's key.
    """
    chosen = workspace_get(workspace) if workspace else workspace_default()
    with workspace_override(chosen), audit_origin(Origin(via=via, workspace=chosen.key)):
        yield chosen


@setup_logging.connect
def use_django_logging(**_: object) -> None:
    """Workers log through the settings' LOGGING (JSON lines) rather than Celery's own format."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@worker_process_init.connect
def lower_worker_priority(**_: object) -> None:
    """Background work yields the CPU to the web processes people wait on (on one host)."""
    from django.conf import settings

    if settings.WORKER_NICENESS > 0:
        os.nice(settings.WORKER_NICENESS)


@worker_process_init.connect
def braze_client_build(**_: object) -> None:
    """Build this process's Braze client before its first task: its first build imports
    httpx's transport and loads the CA bundle, a few hundred milliseconds on a busy host that
    the first bulk request (or a person's approved change) would otherwise wait for."""
    # Lazy: this module loads with the project (console/__init__.py), before the apps are.
    from console.braze import get_client

    try:
        get_client()
    except Exception:  # the first task builds it, and says what is wrong
        logging.getLogger(__name__).warning("Braze client not built ahead", exc_info=True)
