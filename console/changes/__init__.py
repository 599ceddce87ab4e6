"""Change requests with maker-checker approval: the only path a write takes to Braze.

Public API:
- services: `change_request_propose`, `change_request_edit`, `change_request_submit`,
  `change_request_approve`, `change_request_reject`, `change_request_cancel`,
  `change_request_retry`, `change_request_comment`, `change_request_apply` (run by the
  Celery task); policy: `approval_policy_propose` (a policy change is a change request too).
- appliers: `register_applier(resource_type, applier)`; each resource type tells the
  apply step how to read, write and recognise its resource in Braze (or, for `local`
  types such as console roles and approval policies, in the console's database), and who
  may see, propose and review its requests.
- selectors: `change_request_may_view` decides who may see a request of a resource type.
"""
