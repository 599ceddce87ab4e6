import os

from celery import Celery
from celery.signals import setup_logging, worker_process_init
from django_structlog.celery.steps import DjangoStructLogInitStep
from kombu import Queue

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
