"""Approval policies as change requests of their own, applied in the console's database.

An Admin who could set a policy alone could lower what their own changes need; so a new
number of approvals is proposed like any change and another Admin approves it.
Identifiers are `<resource type>/<action>`; the payload is `{"required_approvals": n}`.
"""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from console.audit import events
from console.audit.services import audit_append
from console.changes.appliers import merge_state
from console.changes.models import ApprovalPolicy, ChangeRequest
from console.changes.resource_types import (
    Identifiers,
    ResourceType,
    resource_type_find,
    resource_type_register,
)
from console.roles import Capability
from console.workspaces import workspace_default_key

RESOURCE_TYPE = "approval_policy"
IDENTIFIERS = Identifiers("{resource_type}/{action}")
# Approvals needed when neither a policy row nor the resource type says otherwise.
DEFAULT_APPROVALS = 1


def approvals_required(*, resource_type: str, action: str, workspace: str | None = None) -> int:
    """Approvals a change needs in ``workspace`` (a key; default: the default workspace): its
    own policy row, else the row for every workspace (""), else the type's default, else one."""
    own = workspace if workspace is not None else workspace_default_key()
    rows = ApprovalPolicy.objects.filter(
        resource_type=resource_type, action=action, workspace__in=[own, ""]
    )
    # The workspace's own row sorts first ("" sorts before any key, so descending).
    row = rows.order_by("-workspace").first()
    if row is not None:
        return row.required_approvals
    found = resource_type_find(resource_type)
    defaults = found.default_approvals if found is not None else {}
    return defaults.get(action, DEFAULT_APPROVALS)


def policy_identifier(*, resource_type: str, action: str) -> str:
    return IDENTIFIERS.build(resource_type=resource_type, action=action)


def _rule(identifier: str) -> tuple[str, str]:
    parts = IDENTIFIERS.parse(identifier)
    return parts["resource_type"], parts["action"]


class ApprovalPolicyApplier:
    def read_current(self, identifier: str) -> dict[str, Any] | None:
        # Without a change request to say whose, the default workspace's rule.
        resource_type, action = _rule(identifier)
        return {
            "required_approvals": approvals_required(
                resource_type=resource_type, action=action, workspace=workspace_default_key()
            )
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
        before = approvals_required(
            resource_type=resource_type, action=action, workspace=change_request.workspace
        )
        after = int(change_request.payload["required_approvals"])
        # The rule of the request's workspace: production can need more than staging.
        ApprovalPolicy.objects.update_or_create(
            workspace=change_request.workspace,
            resource_type=resource_type,
            action=action,
            defaults={"required_approvals": after},
        )
        audit_append(
            actor=actor,
            action=events.POLICY_CHANGED,
            resource_type=RESOURCE_TYPE,
            resource_id=change_request.identifier,
            change_request_id=change_request.pk,
            data={
                "before": before,
                "after": after,
                "proposed_by": change_request.author_id,
            },
        )
        return {"required_approvals": after}


def register() -> None:
    applier = ApprovalPolicyApplier()
    resource_type_register(
        ResourceType(
            key=RESOURCE_TYPE,
            label="Approval policy",
            applier=applier,
            identifiers=IDENTIFIERS,
            propose=Capability.MANAGE_USERS,
            review=Capability.MANAGE_USERS,
            # Who may change what is the console's own governance: the audience of the
            # audit log.
            view=frozenset({Capability.MANAGE_USERS, Capability.AUDIT}),
            apply_local=applier.apply_local,
        )
    )
