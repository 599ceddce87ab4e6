"""The console's own "is this Liquid Braze would accept?" check.

Braze parses Content Block Liquid when it is saved and refuses "malformed liquid". The
console parses with python-liquid (standard Shopify Liquid) after setting aside what is
Braze's own dialect, so valid Braze content is never refused for using Braze extensions
(braze-facts §5): HTML comments (Braze strips them before Liquid runs), Braze-only tags
whose arguments standard Liquid cannot parse, and `${attribute}` personalization.
"""

from __future__ import annotations

import re

from liquid import Environment
from liquid.exceptions import LiquidError

_ENV = Environment()

_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_BRAZE_TAGS = re.compile(
    r"{%-?\s*(?:connected_content|catalog_items|catalog_selection_items|abort_message"
    r"|form_field_name|promotion|rerender|content_blocks)\b.*?-?%}",
    re.DOTALL,
)
_PERSONALIZATION = re.compile(r"\$\{([^}]*)\}")
_BLOCK_REFERENCE = re.compile(r"{{-?\s*content_blocks\.\$\{\s*([^}\s]+)\s*\}")


def _as_identifier(match: re.Match[str]) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", match.group(1).strip()) or "_"
    return f"_{name}" if name[0].isdigit() else name


def liquid_error(content: str) -> str | None:
    """python-liquid's description of the first syntax error, or None when it parses."""
    text = _HTML_COMMENT.sub("", content)
    text = _BRAZE_TAGS.sub("", text)
    text = _PERSONALIZATION.sub(_as_identifier, text)
    try:
        _ENV.parse(text)
    except LiquidError as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def referenced_blocks(text: str) -> list[str]:
    """Names of the Content Blocks `text` includes, in order of appearance."""
    return [m.group(1) for m in _BLOCK_REFERENCE.finditer(text)]


def block_liquid_tag(name: str) -> str:
    return "{{content_blocks.${" + name + "}}}"
