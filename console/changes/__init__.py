"""Change requests with maker-checker approval: the only path a write takes to Braze.

Public API:
- services: `change_request_propose`, `change_request_edit`, `change_request_submit`,
  `change_request_approve`, `change_request_reject`, `change_request_cancel`,
  `change_request_retry`, `change_request_comment`, `change_request_apply` (run by the
  Celery task), `approval_policy_propose` (a policy change is a change request too).
- resource_types: `resource_type_register(ResourceType(...))`; each resource type tells
  the core how to read, write and recognise its resource in Braze (its applier; or, for
  `local` types such as console roles and approval policies, the console's database), who
  may see, propose and review its requests, and how its identifiers are written.
- selectors: `change_request_may_view` decides who may see a request of a resource type.
- policy: `approvals_required` (a policy row, else the type's `default_approvals`, else one).
"""
