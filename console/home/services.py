"""Writes of the home page."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models.functions import Greatest
from django.utils import timezone

from console.audit.events import EXTERNAL_CHANGES
from console.audit.models import AuditEntry
from console.home.models import HomeMark


def home_mark_seen(*, user: AbstractBaseUser, seq: int) -> None:
    """Mark the changes made outside the console up to `seq` as seen by `user`.

    Never moves the mark back (a second tab posting an older page's seq keeps the newer
    one), nor past the newest such change (a made-up number cannot hide those still to
    come). Nothing is audited: it changes what one person's home shows them, nothing else.
    """
    newest = (
        AuditEntry.objects.filter(action__in=sorted(EXTERNAL_CHANGES))
        .order_by("-seq")
        .values_list("seq", flat=True)
        .first()
    )
    seq = min(seq, newest or 0)
    with transaction.atomic():
        mark, created = HomeMark.objects.get_or_create(
            user_id=user.pk, defaults={"external_seen_seq": seq}
        )
        if not created:
            HomeMark.objects.filter(pk=mark.pk).update(
                external_seen_seq=Greatest("external_seen_seq", seq), updated_at=timezone.now()
            )
