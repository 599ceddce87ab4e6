import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("console")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def lower_worker_priority(**_: object) -> None:
    """Background work yields the CPU to the web processes people wait on (on one host)."""
    from django.conf import settings

    if settings.WORKER_NICENESS > 0:
        os.nice(settings.WORKER_NICENESS)
