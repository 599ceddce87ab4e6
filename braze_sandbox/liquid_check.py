"""Decide whether content is "malformed Liquid" the way Braze's save-time check would.

python-liquid parses standard Shopify Liquid. Braze's own syntax is set aside first so that
valid Braze content is never refused for using Braze extensions: HTML comments (Braze
strips them), `${attribute}` personalization, `{{ … }}` inside a tag, and Braze's own tags
(dropped; `translation` … `endtranslation` must pair up).

Each step is one pass over the text, and the text python-liquid finally sees has every
`{{` and `{%` closed and every `{% raw %}` ended, so its lexer never rescans the rest of
the text from more than one place (an unclosed `{{` repeated makes it cubic). The caller
checks the 50 KB limit first.
"""

from __future__ import annotations

import re

from liquid import Environment
from liquid.exceptions import LiquidError

_ENV = Environment()

# Reference (braze-inc/braze-docs, _docs/_user_guide/): "Aborting messages", "Connected
# Content", "Using catalogs in a message", "Catalog selections", "Message extras Liquid
# tag", "Promotion codes", "Tracking users with forms"; "Create preference center"
# (_docs/_api/endpoints/preference_center/) for form_field_name.
BRAZE_TAGS = frozenset(
    {
        "abort_message",
        "catalog_items",
        "catalog_selection_items",
        "connected_content",
        "content_blocks",
        "form_field_name",
        "landing_page_url",
        "message_extras",
        "promotion",
        "rerender",
    }
)
# Reference: "Locales in messages".
TRANSLATION, END_TRANSLATION = "translation", "endtranslation"
MAX_BRACKET_DEPTH = 20

_OPENER = re.compile(r"\{[{%]")
_TAG_NAME = re.compile(r"-?\s*(#|\w+)")
_VERBATIM_START = re.compile(r"\{%-?\s*(raw|doc)\s*-?%\}")
_VERBATIM_END = {
    "raw": re.compile(r"\{%-?\s*endraw\s*-?%\}"),
    "doc": re.compile(r"\{%-?\s*enddoc\s*-?%\}"),
}
_SPACES = re.compile(r"\s{2,}")
CONTENT_BLOCK_REF = re.compile(r"\{\{-?\s*content_blocks\.\$\{\s*([^}\s]{1,100})\s*\}")


def _strip_comments(text: str) -> str:
    out, pos = [], 0
    while (start := text.find("<!--", pos)) >= 0 and (end := text.find("-->", start + 4)) >= 0:
        out.append(text[pos:start])
        pos = end + 3
    out.append(text[pos:])
    return "".join(out)


def _identifier(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", name.strip()) or "_"
    return name if not name[0].isdigit() else f"_{name}"


def _replace_personalization(text: str) -> str:
    out, pos = [], 0
    while (start := text.find("${", pos)) >= 0 and (end := text.find("}", start + 2)) >= 0:
        out += [text[pos:start], _identifier(text[start + 2 : end])]
        pos = end + 1
    out.append(text[pos:])
    return "".join(out)


def _too_deep(expression: str) -> bool:
    depth, quote = 0, ""
    for char in expression:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([":
            depth += 1
            if depth > MAX_BRACKET_DEPTH:
                return True
        elif char in ")]":
            depth = max(depth - 1, 0)
    return False


def _neutralise(content: str) -> str | None:
    """Standard Liquid for python-liquid, or None when the content is malformed already."""
    text = _replace_personalization(_strip_comments(content))
    text = _SPACES.sub(lambda m: "\n" if "\n" in m.group() else " ", text)
    out: list[str] = []
    pos, translations = 0, 0
    while (opener := _OPENER.search(text, pos)) is not None:
        start = opener.start()
        if text[start + 1] == "{":
            end = text.find("}}", start + 2)
            if end < 0 or _too_deep(text[start + 2 : end]):
                return None
            out.append(text[pos : end + 2])
            pos = end + 2
            continue
        if (verbatim := _VERBATIM_START.match(text, start)) is not None:
            closing = _VERBATIM_END[verbatim.group(1)].search(text, verbatim.end())
            if closing is None:
                return None
            out.append(text[pos : closing.end()])
            pos = closing.end()
            continue
        name = _TAG_NAME.match(text, start + 2)
        if name is None:
            out.append(text[pos : start + 2])
            pos = start + 2
            continue
        end = text.find("%}", name.end())
        if end < 0:
            return None
        tag = name.group(1)
        out.append(text[pos:start])
        if tag in BRAZE_TAGS:
            pass
        elif tag == TRANSLATION:
            translations += 1
        elif tag == END_TRANSLATION:
            translations -= 1
            if translations < 0:
                return None
        else:
            expression = text[name.end() : end].replace("{{", " ").replace("}}", " ")
            if _too_deep(expression):
                return None
            out += [text[start : name.end()], expression, "%}"]
        pos = end + 2
    if translations:
        return None
    out.append(text[pos:])
    return "".join(out)


def is_malformed(content: str) -> bool:
    text = _neutralise(content)
    if text is None:
        return True
    try:
        _ENV.parse(text)
    except (LiquidError, RecursionError):
        return True
    return False


def referenced_blocks(content: str) -> list[str]:
    return [m.group(1) for m in CONTENT_BLOCK_REF.finditer(content)]
