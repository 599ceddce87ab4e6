"""Resetting someone's second factor is a change request another Admin approves.

A reset lets whoever holds the person's password enrol a factor of their own, so one Admin
who learnt another's password could otherwise take over a second Admin account and approve
their own proposals with it (README, "Maker-checker on people"). The identifier is the
console user's id; snapshots are `{"factors": [...]}` (kind and name of each app and passkey,
and the unused recovery codes), so a factor enrolled since the proposal is a conflict.
"""

from typing import Any

from console.changes.appliers import ConsoleUserApplier
from console.changes.resource_types import ResourceType, resource_type_register
from console.roles import Capability
from mfa.identifiers import IDENTIFIERS, RESET_RESOURCE_TYPE
from mfa.selectors import factors_snapshot
from mfa.services import devices_reset_apply_approved


class SecondFactorResetApplier(ConsoleUserApplier):
    def read_current(self, identifier: str) -> dict[str, Any] | None:
        return factors_snapshot(user_id=int(identifier))

    def apply_local(self, *, change_request: Any, actor: Any) -> dict[str, Any]:
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
