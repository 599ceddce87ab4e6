# The content tests' sandbox-backed client and request spy serve the bundle tests too.
from tests.templates_app.conftest import braze, sent

__all__ = ["braze", "sent"]
