"""The key of a second-factor reset request and how its identifier is written (the console
user's id). Apart from appliers.py, so that services can name it while the applier, which
calls those services, sits above them."""

from console.changes.resource_types import Identifiers

RESET_RESOURCE_TYPE = "second_factor_reset"
IDENTIFIERS = Identifiers("{user}")
