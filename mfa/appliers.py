"""Resetting someone's second factor is a change request another Admin approves.

A reset lets whoever holds the person's password enrol a factor of their own, so one Admin
who learnt another's password could otherwise take over a second Admin account and approve
their own proposals with it (README, "Maker-checker on people"). The identifier is the
console user's id; snapshots are `{"factors": [...]}` (kind and name of each app and passkey,
and the unused recovery codes), so a factor enrolled since the proposal is a conflict.
"""

from typing import Any

from console.changes.appliers import merge_state
from console.changes.diff import same
from console.changes.resource_types import Identifiers, ResourceType, resource_type_register
from console.roles import Capability

RESET_RESOURCE_TYPE = "second_factor_reset"


IDENTIFIERS = Identifiers("{user}")


class SecondFactorResetApplier:
    def lock(self, identifier: str) -> None:
        from django.contrib.auth.models import User

        User.objects.select_for_update().filter(pk=int(identifier)).first()

    def read_current(self, identifier: str) -> dict[str, Any] | None:
        from mfa.selectors import factors_snapshot

        return factors_snapshot(user_id=int(identifier))

    def is_applied(self, action: str, identifier: str, payload: dict[str, Any]) -> bool:
        return same(self.read_current(identifier), payload)

    def proposed_state(
        self, base: dict[str, Any] | None, action: str, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        return merge_state(base, action, payload)

    def apply(self, action: str, identifier: str, payload: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError("second factor resets are applied by apply_local")

    def apply_local(self, *, change_request: Any, actor: Any) -> dict[str, Any]:
        from mfa.services import devices_reset_apply_approved

        return devices_reset_apply_approved(actor=actor, change_request=change_request)


def register() -> None:
    applier = SecondFactorResetApplier()
    resource_type_register(
        ResourceType(
            key=RESET_RESOURCE_TYPE,
            label="Second factor reset",
            applier=applier,
            identifiers=IDENTIFIERS,
            propose=Capability.MANAGE_USERS,
            review=Capability.MANAGE_USERS,
            # Who may do what in the console: the audience of the access review, as for roles.
            view=frozenset({Capability.MANAGE_USERS, Capability.AUDIT}),
            apply_local=applier.apply_local,
            lock=applier.lock,
            concerns_console_user=True,
        )
    )
