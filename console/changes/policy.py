"""Approval policies as change requests of their own, applied in the console's database.

An Admin who could set a policy alone could lower what their own changes need; so a new
number of approvals is proposed like any change and another Admin approves it.
Identifiers are `<resource type>/<action>`; the payload is `{"required_approvals": n}`.
"""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from console.audit import events
from console.audit.services import audit_append
from console.changes.appliers import merge_state, register_applier
from console.changes.models import ApprovalPolicy, ChangeAction, ChangeRequest
from console.changes.services import (
    ChangeRequestError,
    approvals_required,
    change_request_propose,
)
from console.roles import Capability, user_capabilities

RESOURCE_TYPE = "approval_policy"


def policy_identifier(*, resource_type: str, action: str) -> str:
    return f"{resource_type}/{action}"


def _rule(identifier: str) -> tuple[str, str]:
    resource_type, _, action = identifier.rpartition("/")
    return resource_type, action


def approval_policy_propose(
    *, actor: AbstractBaseUser, resource_type: str, action: str, required_approvals: int
) -> ChangeRequest:
    """Ask another Admin to approve a new number of approvals for a resource type and
    action: one Admin alone cannot lower what their own changes need."""
    if Capability.MANAGE_USERS not in user_capabilities(actor):
        raise ChangeRequestError("You need the manage_users capability to do this.")
    if required_approvals < 1:
        raise ChangeRequestError("Every change needs at least one reviewer.")
    action = ChangeAction(action)
    before = approvals_required(resource_type=resource_type, action=action)
    if before == required_approvals:
        raise ChangeRequestError(
            f"{resource_type} {action.label.lower()} already needs {before} approval(s)."
        )
    return change_request_propose(
        actor=actor,
        resource_type=RESOURCE_TYPE,
        identifier=policy_identifier(resource_type=resource_type, action=action),
        action=ChangeAction.UPDATE,
        payload={"required_approvals": required_approvals},
        base_snapshot={"required_approvals": before},
        title=(
            f"Approvals for {resource_type} {action.label.lower()}: {before} → {required_approvals}"
        ),
    )


class ApprovalPolicyApplier:
    label = "Approval policy"
    local = True
    propose_capability = Capability.MANAGE_USERS
    review_capability = Capability.MANAGE_USERS
    # Who may change what is the console's own governance: the audience of the audit log.
    view_capabilities = frozenset({Capability.MANAGE_USERS, Capability.AUDIT})

    def read_current(self, identifier: str) -> dict[str, Any] | None:
        resource_type, action = _rule(identifier)
        return {
            "required_approvals": approvals_required(resource_type=resource_type, action=action)
        }

    def is_applied(self, action: str, identifier: str, payload: dict[str, Any]) -> bool:
        return self.read_current(identifier) == payload

    def proposed_state(
        self, base: dict[str, Any] | None, action: str, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        return merge_state(base, action, payload)

    def apply(self, action: str, identifier: str, payload: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError("approval policies are applied by apply_local")

    def apply_local(
        self, *, change_request: ChangeRequest, actor: AbstractBaseUser
    ) -> dict[str, Any]:
        resource_type, action = _rule(change_request.identifier)
        before = self.read_current(change_request.identifier) or {}
        after = int(change_request.payload["required_approvals"])
        ApprovalPolicy.objects.update_or_create(
            resource_type=resource_type, action=action, defaults={"required_approvals": after}
        )
        audit_append(
            actor=actor,
            action=events.POLICY_CHANGED,
            resource_type=RESOURCE_TYPE,
            resource_id=change_request.identifier,
            change_request_id=change_request.pk,
            data={
                "before": before.get("required_approvals"),
                "after": after,
                "proposed_by": change_request.author_id,
            },
        )
        return {"required_approvals": after}


def register() -> None:
    register_applier(RESOURCE_TYPE, ApprovalPolicyApplier())
