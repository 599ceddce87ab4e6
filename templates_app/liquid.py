"""The console's own "is this Liquid Braze would accept?" check.

Braze parses Content Block Liquid when it is saved and refuses "malformed liquid". The
console parses with python-liquid (standard Shopify Liquid) after setting aside what is
Braze's own dialect, so valid Braze content is never refused for using Braze extensions
(braze-facts §5): HTML comments (Braze strips them before Liquid runs), `${attribute}`
personalization, `{{ … }}` written inside a tag (Braze's documented `{% if
{{custom_attribute.${balance}}} > 0 %}`), and Braze's own tags, which are registered with
the parser so their arguments are never read as standard Liquid.

Every step runs in time linear in the content. python-liquid's lexer does not: an
unclosed `{{`, a `{% raw %}` with no end, a long run of spaces inside `{{ }}` or deeply
nested parentheses make it quadratic or worse (50 KB of `{` takes minutes). `_prepare`
answers those cases itself, in one pass, before the text reaches python-liquid. Callers
check the 50 KB limit first (rules.CONTENT_MAX_BYTES); this module bounds the cost, the
limit bounds the input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from liquid import Environment
from liquid.ast import Node
from liquid.exceptions import LiquidError
from liquid.parser import get_parser
from liquid.tag import Tag
from liquid.token import TOKEN_EOF, TOKEN_EXPRESSION, TOKEN_TAG

if TYPE_CHECKING:
    from typing import TextIO

    from liquid.context import RenderContext
    from liquid.stream import TokenStream

# Braze's tags that take arguments standard Liquid cannot parse and have no end tag.
# Reference: "Aborting messages", "Connected Content", "Using catalogs in a message",
# "Catalog selections", "Message extras Liquid tag", "Promotion codes", "Tracking users
# with forms" (landing pages), "Create preference center" (form_field_name), under
# _docs/_user_guide/ and _docs/_api/endpoints/preference_center/ in braze-inc/braze-docs.
# `content_blocks` and `rerender` are Braze words too (an include and a flag); a
# pre-check must never refuse what Braze accepts, so they are set aside as well.
BRAZE_INLINE_TAGS = frozenset(
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
# Braze's block tags, with their end tag. Reference: "Locales in messages".
BRAZE_BLOCK_TAGS = {"translation": "endtranslation"}

# Deeper than this, python-liquid's expression parser slows down quadratically; standard
# Liquid has no grouping parentheses at all (only `(1..n)` ranges).
MAX_BRACKET_DEPTH = 20

_OPENER = re.compile(r"\{[{%]")
_TAG_NAME = re.compile(r"-?\s*(#|\w+)")
# Exactly the openings python-liquid's lexer reads as the start of a verbatim block.
_VERBATIM_START = re.compile(r"\{%-?\s*(raw|doc)\s*-?%\}")
_VERBATIM_END = {
    "raw": re.compile(r"\{%-?\s*endraw\s*-?%\}"),
    "doc": re.compile(r"\{%-?\s*enddoc\s*-?%\}"),
}
_WHITESPACE_RUN = re.compile(r"\s{2,}")
_BLOCK_REFERENCE = re.compile(r"\{\{-?\s*content_blocks\.\$\{\s*([^}\s]{1,100})\s*\}")


class _Inert(Node):
    __slots__ = ()

    def render_to_output(self, context: RenderContext, buffer: TextIO) -> int:
        return 0


class _BrazeCall(_Inert):
    """A Braze inline tag, keeping its arguments as written (for `catalog_references`)."""

    __slots__ = ("arguments",)

    def __init__(self, token: Any, arguments: str) -> None:
        super().__init__(token)
        self.arguments = arguments


class _BrazeInlineTag(Tag):
    """Accepts anything between its delimiters: Braze, not the console, reads it."""

    block = False

    def parse(self, stream: TokenStream) -> Node:
        token = stream.expect(TOKEN_TAG)
        arguments = ""
        if stream.peek.kind == TOKEN_EXPRESSION:
            next(stream)
            arguments = stream.current.value
        return _BrazeCall(token, arguments)


class _BrazeBlockTag(Tag):
    """A Braze block (e.g. translation): its own arguments are Braze's; its body is Liquid."""

    def parse(self, stream: TokenStream) -> Node:
        token = stream.eat(TOKEN_TAG)
        if stream.current.kind == TOKEN_EXPRESSION:
            next(stream)
        get_parser(self.env).parse_block(stream, frozenset((self.end, TOKEN_EOF)))
        stream.expect(TOKEN_TAG, value=self.end)
        return _Inert(token)


def _environment() -> Environment:
    env = Environment()
    for tag_name in BRAZE_INLINE_TAGS:
        env.add_tag(type(f"Braze_{tag_name}", (_BrazeInlineTag,), {"name": tag_name}))
    for tag_name, end in BRAZE_BLOCK_TAGS.items():
        env.add_tag(type(f"Braze_{tag_name}", (_BrazeBlockTag,), {"name": tag_name, "end": end}))
    return env


_ENV = _environment()


def without_html_comments(text: str) -> str:
    # Braze strips HTML comments before running Liquid. An unclosed "<!--" hides nothing
    # (no later comment can close either), so the scan stops there.
    pieces, pos = [], 0
    while (start := text.find("<!--", pos)) >= 0:
        end = text.find("-->", start + 4)
        if end < 0:
            break
        pieces.append(text[pos:start])
        pos = end + 3
    pieces.append(text[pos:])
    return "".join(pieces)


def _as_identifier(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", name.strip()) or "_"
    return f"_{name}" if name[0].isdigit() else name


def _without_personalization(text: str) -> str:
    """`${first_name}` becomes `first_name`, a name standard Liquid can parse."""
    pieces, pos = [], 0
    while (start := text.find("${", pos)) >= 0:
        end = text.find("}", start + 2)
        if end < 0:
            break  # no later "${" can close either
        pieces += [text[pos:start], _as_identifier(text[start + 2 : end])]
        pos = end + 1
    pieces.append(text[pos:])
    return "".join(pieces)


def _collapse_whitespace(match: re.Match[str]) -> str:
    # Newlines separate the lines of a `{% liquid %}` tag, so a run keeps one.
    return "\n" if "\n" in match.group() else " "


def _too_deep(expression: str) -> bool:
    depth, quote = 0, ""
    for char in expression:
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([":
            depth += 1
            if depth > MAX_BRACKET_DEPTH:
                return True
        elif char in ")]":
            depth = max(depth - 1, 0)
    return False


def _prepare(content: str) -> tuple[str, str | None]:
    """The text python-liquid should parse, or why the content is malformed already.

    One pass over the delimiters, visiting each place python-liquid's lexer starts a
    token: every `{{` and every named `{%` must close, and every `{% raw %}` / `{% doc %}`
    must end, so the lexer never scans to the end of the text from more than one place.
    """
    text = without_html_comments(content)
    text = _without_personalization(text)
    text = _WHITESPACE_RUN.sub(_collapse_whitespace, text)
    pieces: list[str] = []
    pos = 0
    while (opener := _OPENER.search(text, pos)) is not None:
        start = opener.start()
        if text[start + 1] == "{":
            end = text.find("}}", start + 2)
            if end < 0:
                return "", "an output tag '{{' is never closed with '}}'"
            if _too_deep(text[start + 2 : end]):
                return "", "brackets are nested too deeply"
            pieces.append(text[pos : end + 2])
            pos = end + 2
            continue
        verbatim = _VERBATIM_START.match(text, start)
        if verbatim is not None:
            tag = verbatim.group(1)
            closing = _VERBATIM_END[tag].search(text, verbatim.end())
            if closing is None:
                return "", f"'{{% {tag} %}}' has no '{{% end{tag} %}}'"
            pieces.append(text[pos : closing.end()])
            pos = closing.end()
            continue
        name = _TAG_NAME.match(text, start + 2)
        if name is None:  # not a tag to python-liquid either: literal text
            pieces.append(text[pos : start + 2])
            pos = start + 2
            continue
        end = text.find("%}", name.end())
        if end < 0:
            return "", f"the tag '{name.group(1)}' is never closed with '%}}'"
        tag = name.group(1)
        expression = text[name.end() : end]
        if tag not in BRAZE_INLINE_TAGS and tag not in BRAZE_BLOCK_TAGS:
            # Braze reads `{{ x }}` inside a tag as `x`.
            expression = expression.replace("{{", " ").replace("}}", " ")
            if _too_deep(expression):
                return "", "brackets are nested too deeply"
        pieces += [text[pos : name.end()], expression, "%}"]
        pos = end + 2
    pieces.append(text[pos:])
    return "".join(pieces), None


def liquid_error(content: str) -> str | None:
    """A description of the first Liquid syntax error, or None when it parses."""
    text, error = _prepare(content)
    if error is not None:
        return error
    try:
        _ENV.parse(text)
    except LiquidError as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    except RecursionError:
        return "blocks are nested too deeply"
    return None


@dataclass(frozen=True)
class CatalogReferences:
    """What a text's Liquid reads from catalogs ("Using catalogs in a message",
    "Catalog selections"): `{% catalog_items <catalog> <id…> %}` and
    `{% catalog_selection_items <catalog> <selection> %}` assign `items`; the fields are
    those read from `items` (`items[0].title`, `items.title`, or through a `for` loop)."""

    catalogs: frozenset[str] = frozenset()
    selections: frozenset[tuple[str, str]] = frozenset()
    fields: frozenset[str] = frozenset()


def walk_nodes(nodes: list[Any]) -> Any:
    """Every node of a parsed template, depth first."""
    for node in nodes:
        yield node
        try:
            children = list(node.children(None))
        except Exception:
            children = []  # a node python-liquid cannot list statically has none to read
        for child in children:
            inner = getattr(child, "node", child)
            yield from walk_nodes([inner] if isinstance(inner, Node) else [])


def catalog_references(content: str) -> CatalogReferences:
    """Parsed, never matched as text: a name in prose or an HTML comment is no reference.
    Content that does not parse references nothing the console can vouch for."""
    text, error = _prepare(content)
    if error is not None:
        return CatalogReferences()
    try:
        template = _ENV.parse(text)
    except (LiquidError, RecursionError):
        return CatalogReferences()
    catalogs: set[str] = set()
    selections: set[tuple[str, str]] = set()
    roots = {"items"}
    for node in walk_nodes(list(template.nodes)):
        if isinstance(node, _BrazeCall):
            words = node.arguments.split()
            name = getattr(node.token, "value", "")
            if name == "catalog_items" and words:
                catalogs.add(words[0])
            elif name == "catalog_selection_items" and len(words) >= 2:
                catalogs.add(words[0])
                selections.add((words[0], words[1]))
        expression = getattr(node, "expression", None)
        # `{% for item in items %}`: `item` reads the catalog's items too.
        iterable = str(getattr(expression, "iterable", "")).split("[")[0]
        if type(expression).__name__ == "LoopExpression" and iterable in roots:
            roots.add(str(getattr(expression, "identifier", "")))
    fields: set[str] = set()
    for segments in template.variable_segments():
        if segments and segments[0] in roots:
            named = [s for s in segments[1:] if isinstance(s, str)]
            if named:
                fields.add(named[0])
    return CatalogReferences(frozenset(catalogs), frozenset(selections), frozenset(fields))


def referenced_blocks(text: str) -> list[str]:
    """Names of the Content Blocks `text` includes, in order of appearance."""
    return [m.group(1) for m in _BLOCK_REFERENCE.finditer(text)]


def included_blocks(content: str) -> frozenset[str]:
    """Names of the Content Blocks `content` includes, found by parsing it: an include in
    an HTML comment or a `{% raw %}` block is none. Content that does not parse answers
    with every include written in it, so an order built on this never misses one."""
    written = referenced_blocks(content)
    if not written:
        return frozenset()
    text, error = _prepare(content)
    if error is not None:
        return frozenset(written)
    try:
        template = _ENV.parse(text)
    except (LiquidError, RecursionError):
        return frozenset(written)
    # `${name}` reached the parser as `_as_identifier(name)`: map it back to the name.
    parsed = {
        str(segments[1])
        for segments in template.variable_segments()
        if len(segments) >= 2 and segments[0] == "content_blocks"
    }
    return frozenset(name for name in written if _as_identifier(name) in parsed)


def block_liquid_tag(name: str) -> str:
    return "{{content_blocks.${" + name + "}}}"
