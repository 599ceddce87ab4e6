"""Decide whether content is "malformed Liquid" the way Braze's save-time check would.

python-liquid parses standard Shopify Liquid. Braze's own syntax is neutralised first so that
valid Braze content is never refused for using Braze extensions.
"""

from __future__ import annotations

import re

from liquid import Environment
from liquid.exceptions import LiquidError

_ENV = Environment()

# Braze-only block-less tags; their arguments use syntax (":save", "('…')") standard Liquid rejects.
_BRAZE_TAGS = re.compile(
    r"{%-?\s*(connected_content|catalog_items|catalog_selection_items|abort_message"
    r"|form_field_name|promotion|rerender)\b.*?-?%}",
    re.DOTALL,
)
_PERSONALIZATION = re.compile(r"\$\{([^}]*)\}")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
CONTENT_BLOCK_REF = re.compile(r"{{-?\s*content_blocks\.\$\{\s*([^}\s]+)\s*\}")


def _identifier(match: re.Match[str]) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", match.group(1).strip()) or "_"
    return name if not name[0].isdigit() else f"_{name}"


def is_malformed(content: str) -> bool:
    # Braze strips HTML comments before running Liquid, so Liquid inside them is never parsed.
    text = _HTML_COMMENT.sub("", content)
    text = _BRAZE_TAGS.sub("", text)
    text = _PERSONALIZATION.sub(_identifier, text)
    try:
        _ENV.parse(text)
    except LiquidError:
        return True
    return False


def referenced_blocks(content: str) -> list[str]:
    return [m.group(1) for m in CONTENT_BLOCK_REF.finditer(content)]
