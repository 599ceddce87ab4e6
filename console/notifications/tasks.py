from typing import Any

from celery import shared_task

from console.notifications.models import WEBHOOK_MAX_ATTEMPTS, DeliveryState


@shared_task(bind=True, ignore_result=True, acks_late=True, max_retries=WEBHOOK_MAX_ATTEMPTS)
def webhook_deliver_task(self: Any, delivery_id: int) -> None:
    """Ids only: the payload and the signing secret never travel through the broker.
    Each attempt is recorded on the delivery; a pending one is tried again with backoff."""
    # services imports this module (to enqueue), so it is imported when the task runs.
    from console.notifications.services import webhook_backoff, webhook_delivery_attempt

    delivery = webhook_delivery_attempt(delivery_id=delivery_id)
    if delivery.state == DeliveryState.PENDING:
        raise self.retry(countdown=webhook_backoff(delivery.attempts).total_seconds())


@shared_task(ignore_result=True)
def webhook_deliveries_sweep_task() -> None:
    # services imports this module (to enqueue), so it is imported when the task runs.
    from console.notifications.services import webhook_deliveries_sweep

    webhook_deliveries_sweep()
