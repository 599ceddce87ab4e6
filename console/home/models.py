from django.conf import settings
from django.db import models


class HomeMark(models.Model):
    """Where a person last looked on their home page: the newest change made in Braze
    outside the console they marked as seen (an audit entry's seq; entries are gapless and
    only grow, so "after this seq" is exactly "since I last looked")."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    external_seen_seq = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user_id} saw up to #{self.external_seen_seq}"
