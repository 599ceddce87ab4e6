"""The audit trail: one append-only, hash-chained table written by explicit calls.

Public API (everything else is internal):
- `console.audit.services.audit_append(*, actor, action, ...)`: write one entry inside the
  caller's transaction.
- `console.audit.services.audit_checkpoint_issue()`: sign the current head (scheduled).
- `console.audit.verify.audit_verify()`: walk the chain and the checkpoints.
"""
