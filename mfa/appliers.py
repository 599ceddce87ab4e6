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
from console.roles import Capability

RESET_RESOURCE_TYPE = "second_factor_reset"


class SecondFactorResetApplier:
    label = "Second factor reset"
    local = True
    concerns_console_user = True
    propose_capability = Capability.MANAGE_USERS
    review_capability = Capability.MANAGE_USERS
    view_capabilities = frozenset({Capability.MANAGE_USERS, Capability.AUDIT})

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
    from console.changes.appliers import register_applier

    register_applier(RESET_RESOURCE_TYPE, SecondFactorResetApplier())
