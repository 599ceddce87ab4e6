"""Render Braze Liquid as one person would receive it (docs/preview.md lists what is supported).

python-liquid renders standard Liquid; Braze's dialect is translated into it first:
`${first_name}` reads the person's standard attributes, `custom_attribute.${x}` (and the
other `namespace.${x}` objects) their nested data, `{{ … }}` written inside a tag is read as
the expression it wraps, and `{{content_blocks.${name}}}` becomes an include of the block.
Braze's own tags (`abort_message`, `connected_content`, `translation`, …) are registered
with the environment; what the console cannot reproduce renders as a visible marker and a
warning, never as silent emptiness.

Rendering is bounded: a deadline, an output size, a loop iteration budget and an include
depth. A render that reaches one stops with a message; it never holds the worker.
The content itself is already bounded by the 50 KB rule (rules.CONTENT_MAX_BYTES).
"""

from __future__ import annotations

import base64
import contextvars
import datetime as dt
import fnmatch
import hashlib
import hmac
import json
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from io import StringIO
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import parser as date_parser
from liquid import Environment, Mode
from liquid.ast import Node
from liquid.context import RenderContext
from liquid.exceptions import (
    ContextDepthError,
    LiquidError,
    LocalNamespaceLimitError,
    LoopIterationLimitError,
    OutputStreamLimitError,
    TemplateNotFoundError,
)
from liquid.parser import get_parser
from liquid.tag import Tag
from liquid.template import BoundTemplate
from liquid.token import TOKEN_EOF, TOKEN_EXPRESSION, TOKEN_TAG

from templates_app.liquid import (
    BRAZE_INLINE_TAGS,
    liquid_error,
    walk_nodes,
    without_html_comments,
)

if TYPE_CHECKING:
    from typing import TextIO

    from liquid.stream import TokenStream
    from liquid.token import Token

# The limits a preview renders within. Braze documents none of its own; these keep a
# preview responsive while leaving room for any message a person would read.
RENDER_SECONDS = 2.0
OUTPUT_MAX_CHARS = 2_000_000
LOOP_ITERATIONS_MAX = 100_000
BLOCK_DEPTH_MAX = 10
NUMBER_MAX_BITS = 1024

STOP_TIME = "the preview took longer than {seconds:g} seconds and was stopped"
STOP_OUTPUT = "the output grew past {size:,} characters and the preview was stopped"
STOP_LOOPS = "loops ran more than {count:,} times and the preview was stopped"
STOP_NUMBER = "a number grew past 300 digits and the preview was stopped"
STOP_VARIABLES = "variables grew past {size:,} characters and the preview was stopped"
STOP_INCLUDE = (
    "the preview stopped: {tag} names a template Braze does not have here; Content Blocks "
    "are included with {{{{content_blocks.${{name}}}}}}"
)
STOP_CYCLE = "Content Blocks include each other in a cycle ({path}); the preview was stopped"
STOP_DEPTH = "Content Blocks are nested more than {depth} deep; the preview was stopped"
ABORTED = "this message would not be sent to this person: {reason}"

# Braze's standard attributes (`${name}`), each with the field Braze's user export gives it
# ("Supported personalization tags"; /users/export/ids). A profile may use either name.
STANDARD_ATTRIBUTES = {
    "braze_id": "braze_id",
    "city": "home_city",
    "country": "country",
    "date_of_birth": "dob",
    "email_address": "email",
    "first_name": "first_name",
    "gender": "gender",
    "language": "language",
    "last_name": "last_name",
    "last_used_app_date": "last_used_app_date",
    "most_recent_app_version": "most_recent_app_version",
    "most_recent_locale": "most_recent_locale",
    "most_recent_location": "most_recent_location",
    "phone_number": "phone",
    "random_bucket_number": "random_bucket",
    "time_zone": "time_zone",
    "user_id": "external_id",
}
# `namespace.${key}` objects: where a profile keeps each one.
NAMESPACES = {
    "custom_attribute": "custom_attributes",
    "event_properties": "event_properties",
    "canvas_entry_properties": "canvas_entry_properties",
    "api_trigger_properties": "api_trigger_properties",
    "most_recently_used_device": "most_recently_used_device",
    "targeted_device": "targeted_device",
    "subscribed_state": "subscribed_state",
    "campaign": "campaign",
    "canvas": "canvas",
    "card": "card",
    "sms": "sms",
}
# Filters Braze documents as unsupported ("Liquid filters"): a preview must not show a
# result Braze would not produce.
UNSUPPORTED_FILTERS = frozenset(
    {
        "camelcase",
        "format_address",
        "handle",
        "handleize",
        "highlight",
        "lstrip",
        "money_with_currency",
        "money_without_currency",
        "pluralize",
        "rstrip",
    }
)
# Braze's tags the preview does not reproduce (promotion codes and the rest live in Braze).
CATALOG_TAGS = frozenset({"catalog_items", "catalog_selection_items"})
UNSUPPORTED_TAGS = BRAZE_INLINE_TAGS - {
    "abort_message",
    "connected_content",
    "content_blocks",
    *CATALOG_TAGS,
}

# The standard attributes' name in the translated text; `$` cannot appear in a Liquid name,
# so no template variable can collide with it.
_USER = "braze_user_"


@dataclass(frozen=True, slots=True)
class Person:
    """Who the preview is for: attributes shaped like Braze's user export."""

    label: str
    attributes: Mapping[str, Any] = field(default_factory=dict)
    language: str = ""
    time_zone: str = ""


@dataclass(frozen=True, slots=True)
class Rendered:
    output: str
    warnings: tuple[str, ...] = ()
    # Why Braze would not send it (abort_message), or why the preview stopped.
    aborted: str = ""
    stopped: str = ""
    # The addresses connected_content would call, in order.
    calls: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        if self.stopped:
            return self.stopped
        if self.aborted:
            return ABORTED.format(reason=self.aborted)
        return ""


# A Content Block's current content by name, or None when there is no such block.
BlockSource = Callable[[str], str | None]


def no_blocks(name: str) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class TranslationLocale:
    """One locale's translations of a template or Content Block, as Braze's translation
    endpoints answer them (`locale` and `translation_map`)."""

    name: str
    language: str
    country: str = ""
    translation_map: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Selected:
    """A selection's items; `problem` when the console cannot evaluate it (a marker then),
    `notes` for what differs from Braze's answer."""

    items: list[dict[str, Any]] = field(default_factory=list)
    problem: str = ""
    notes: tuple[str, ...] = ()


class CatalogSource(Protocol):
    """Catalog items as the console mirrors them ("Using catalogs in a message")."""

    def items(self, catalog: str, item_ids: Sequence[str]) -> list[dict[str, Any]] | None:
        """The items with these ids that exist, in the order asked; None: no such catalog."""
        ...

    def selection(
        self, catalog: str, selection: str, personalize: Callable[[str], str]
    ) -> Selected:
        """The selection's items. `personalize` renders a filter value written in Liquid
        for the person."""
        ...


class NoCatalogs:
    def items(self, catalog: str, item_ids: Sequence[str]) -> list[dict[str, Any]] | None:
        return None

    def selection(
        self, catalog: str, selection: str, personalize: Callable[[str], str]
    ) -> Selected:
        return Selected(problem=f'the console has no mirror of a catalog named "{catalog}"')


@dataclass(slots=True)
class _State:
    person: Person
    blocks: BlockSource
    catalogs: CatalogSource
    now: dt.datetime
    samples: Mapping[str, str]
    seconds: float
    deadline: float
    warnings: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    stack: list[str] = field(default_factory=list)
    parsed: dict[str, BoundTemplate] = field(default_factory=dict)
    # Inside a catalog item's :rerender: catalog tags may not be used there.
    rerendering: bool = False
    # The content's translations by locale; None when the console has not read them.
    translations: Sequence[TranslationLocale] | None = None

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


_STATE: contextvars.ContextVar[_State] = contextvars.ContextVar("preview_state")


class _Stop(Exception):
    """Ends the render with a message for the page."""


class _Abort(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _marker(text: str) -> str:
    return f"[{text}]"


# --- translating Braze's dialect ---------------------------------------------------------------

_NAMESPACED = re.compile(r"([A-Za-z_]\w*)\.$")


def _quoted(key: str) -> str:
    return json.dumps(key.strip())


def _expression(text: str, *, keep_outputs: bool) -> str:
    """One tag's or output's inside, in standard Liquid.

    `{{ x }}` nested inside is read as `x` (kept verbatim in Braze's own tags, whose
    arguments are templates themselves), `ns.${key}` as `ns["key"]`, `${key}` as the
    person's standard attribute.
    """
    pieces: list[str] = []
    pos = 0
    while (start := text.find("${", pos)) >= 0:
        end = text.find("}", start + 2)
        if end < 0:
            break
        before = text[pos:start]
        key = text[start + 2 : end]
        namespaced = _NAMESPACED.search(before)
        if namespaced is not None:
            pieces += [before[:-1], f"[{_quoted(key)}]"]
        else:
            pieces += [before, f"{_USER}[{_quoted(key)}]"]
        pos = end + 1
    pieces.append(text[pos:])
    out = "".join(pieces)
    if not keep_outputs:
        out = out.replace("{{", " ").replace("}}", " ")
    return out


_TAG_NAME = re.compile(r"\{%-?\s*(\w+)")
_BLOCK_OUTPUT = re.compile(r"^\s*content_blocks\.\$\{([^}]*)\}\s*$")


def _close(text: str, start: int, closer: str) -> int:
    """Where the tag or output opened at `start` closes: nested `{{ }}` and `${ }` inside
    are skipped, so `{{a | plus: {{b}}}}` and `{{${first_name}}}` close at their end."""
    pos, depth = start + 2, 0
    while pos < len(text):
        if text.startswith("${", pos):
            end = text.find("}", pos + 2)
            if end < 0:
                return -1
            pos = end + 1
        elif text.startswith("{{", pos):
            depth += 1
            pos += 2
        elif depth and text.startswith("}}", pos):
            depth -= 1
            pos += 2
        elif text.startswith(closer, pos):
            return pos
        else:
            pos += 1
    return -1


def translate(content: str) -> str:
    """Braze Liquid as standard Liquid the preview environment parses."""
    text = without_html_comments(content)
    pieces: list[str] = []
    pos = 0
    opener = re.compile(r"\{[{%]")
    while (found := opener.search(text, pos)) is not None:
        start = found.start()
        is_output = text[start + 1] == "{"
        end = _close(text, start, "}}" if is_output else "%}")
        if end < 0:
            break  # the parser reports the unclosed delimiter
        inner = text[start + 2 : end]
        pieces.append(text[pos:start])
        if is_output:
            block = _BLOCK_OUTPUT.match(inner.strip("-"))
            if block is not None:
                pieces.append("{% braze_content_block " + _quoted(block.group(1)) + " %}")
            else:
                pieces.append("{{" + _expression(inner, keep_outputs=False) + "}}")
        else:
            name = _TAG_NAME.match(text, start)
            own = name is not None and name.group(1) in BRAZE_INLINE_TAGS | {"translation"}
            pieces.append("{%" + _expression(inner, keep_outputs=own) + "%}")
        pos = end + 2
    pieces.append(text[pos:])
    return "".join(pieces)


# --- Braze's tags --------------------------------------------------------------------------------


def _argument(stream: TokenStream) -> tuple[Token, str]:
    token = stream.expect(TOKEN_TAG)
    if stream.peek.kind == TOKEN_EXPRESSION:
        next(stream)
        return token, stream.current.value
    return token, ""


class _AbortNode(Node):
    __slots__ = ("reason",)

    def __init__(self, token: Token, reason: str) -> None:
        super().__init__(token)
        self.reason = reason

    def render_to_output(self, context: RenderContext, buffer: TextIO) -> int:
        raise _Abort(self.reason)


_ABORT_REASON = re.compile(r"""^\s*\(?\s*(?:'([^']*)'|"([^"]*)")?\s*\)?\s*$""")


class _AbortTag(Tag):
    name = "abort_message"
    block = False

    def parse(self, stream: TokenStream) -> Node:
        token, argument = _argument(stream)
        match = _ABORT_REASON.match(argument)
        reason = (match.group(1) or match.group(2) or "") if match else argument.strip("() ")
        return _AbortNode(token, reason or "abort_message() was called")


class _ConnectedContentNode(Node):
    __slots__ = ("save", "url")

    def __init__(self, token: Token, url: BoundTemplate, save: str) -> None:
        super().__init__(token)
        self.url = url
        self.save = save

    def render_to_output(self, context: RenderContext, buffer: TextIO) -> int:
        state = _STATE.get()
        # The URL is itself a template over everything the message can see here.
        written = StringIO()
        for node in self.url.nodes:
            node.render(context, written)
        url = written.getvalue().strip()
        state.calls.append(url)
        sample = _sample_for(state.samples, url)
        if sample is None:
            state.warn(
                f"connected_content would call {url}; the console never calls it and has "
                "no sample answer for it, so the preview uses an empty one"
            )
        if not self.save:
            text = sample if sample is not None else _marker(f"connected_content: {url}")
            buffer.write(text)
            return len(text)
        try:
            value: Any = json.loads(sample) if sample is not None else {}
        except ValueError:
            value = sample
        if isinstance(value, dict):
            value.setdefault("__http_status_code__", 200)
        context.assign(self.save, value)
        return 0


_SAVE = re.compile(r":save\s+(\w+)")


class _ConnectedContentTag(Tag):
    name = "connected_content"
    block = False

    def parse(self, stream: TokenStream) -> Node:
        token, argument = _argument(stream)
        save = _SAVE.search(argument)
        url = re.split(r"\s:\w+", " " + argument, maxsplit=1)[0].strip()
        return _ConnectedContentNode(
            token, self.env.from_string(url), save.group(1) if save else ""
        )


def _sample_for(samples: Mapping[str, str], url: str) -> str | None:
    for pattern, answer in samples.items():
        if fnmatch.fnmatchcase(url, pattern):
            return answer
    return None


def _render_nodes(template: BoundTemplate, context: RenderContext) -> str:
    written = StringIO()
    for node in template.nodes:
        node.render(context, written)
    return written.getvalue()


def _liquid_in(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


class _CatalogNode(Node):
    """`{% catalog_items <catalog> <id> … [:rerender] %}` and
    `{% catalog_selection_items <catalog> <selection> %}`: the items are assigned to
    `items`, as Braze does; the catalog name and ids may be written in Liquid."""

    __slots__ = ("argument", "tag")

    def __init__(self, token: Token, tag: str, argument: BoundTemplate) -> None:
        super().__init__(token)
        self.tag = tag
        self.argument = argument

    def render_to_output(self, context: RenderContext, buffer: TextIO) -> int:
        state = _STATE.get()
        words = _render_nodes(self.argument, context).split()
        rerender = ":rerender" in words
        words = [w for w in words if w != ":rerender"]
        shown = f"{self.tag} {' '.join(words)}".strip()
        if state.rerendering:
            # "Catalog Liquid tags can't be used recursively inside catalogs."
            state.warn(f"{{% {shown} %}} inside a catalog item is not rendered, as in Braze")
            return self._missing(context, buffer, shown)
        if not words or (self.tag == "catalog_selection_items" and len(words) != 2):
            state.warn(f"{{% {shown} %}} does not name a catalog and what to take from it")
            return self._missing(context, buffer, shown)
        catalog, rest = words[0], words[1:]
        if self.tag == "catalog_items":
            found = state.catalogs.items(catalog, rest)
            if found is None:
                state.warn(f'the console has no mirror of a catalog named "{catalog}"')
                return self._missing(context, buffer, shown)
            missing = [i for i in rest if i not in {item["id"] for item in found}]
            if missing:
                state.warn(
                    f'catalog "{catalog}" has no item {", ".join(missing)} in the mirror: '
                    "Braze leaves it out of items"
                )
            items = found
        else:
            chosen = state.catalogs.selection(
                catalog, rest[0], lambda value: self._personalize(value, context)
            )
            for note in chosen.notes:
                state.warn(note)
            if chosen.problem:
                state.warn(chosen.problem)
                return self._missing(context, buffer, shown)
            items = chosen.items
        if rerender:
            items = [self._rerendered(item, context) for item in items]
        context.assign("items", items)
        return 0

    @staticmethod
    def _missing(context: RenderContext, buffer: TextIO, shown: str) -> int:
        context.assign("items", [])
        text = _marker(f"not previewed: {{% {shown} %}}")
        buffer.write(text)
        return len(text)

    @staticmethod
    def _personalize(value: str, context: RenderContext) -> str:
        return _render_nodes(_ENV.from_string(translate(value)), context)

    @staticmethod
    def _rerendered(item: dict[str, Any], context: RenderContext) -> dict[str, Any]:
        # ":rerender" renders the Liquid an item's values hold, one level deep.
        state = _STATE.get()
        state.rerendering = True
        try:
            return {
                key: _CatalogNode._personalize(value, context) if _liquid_in(value) else value
                for key, value in item.items()
            }
        finally:
            state.rerendering = False


class _CatalogTag(Tag):
    block = False

    def parse(self, stream: TokenStream) -> Node:
        token, argument = _argument(stream)
        return _CatalogNode(token, self.name, self.env.from_string(argument))


class _UnsupportedNode(Node):
    __slots__ = ("label",)

    def __init__(self, token: Token, label: str) -> None:
        super().__init__(token)
        self.label = label

    def render_to_output(self, context: RenderContext, buffer: TextIO) -> int:
        _STATE.get().warn(f"{{% {self.label} %}} is not previewed: Braze fills it in when it sends")
        text = _marker(f"not previewed: {{% {self.label} %}}")
        buffer.write(text)
        return len(text)


class _UnsupportedTag(Tag):
    block = False

    def parse(self, stream: TokenStream) -> Node:
        token, _ = _argument(stream)
        return _UnsupportedNode(token, self.name)


class _BlockNode(Node):
    __slots__ = ("block_name",)

    def __init__(self, token: Token, block_name: str) -> None:
        super().__init__(token)
        self.block_name = block_name

    def render_to_output(self, context: RenderContext, buffer: TextIO) -> int:
        state = _STATE.get()
        name = self.block_name
        if name in state.stack:
            raise _Stop(STOP_CYCLE.format(path=" → ".join([*state.stack, name])))
        if len(state.stack) >= BLOCK_DEPTH_MAX:
            raise _Stop(STOP_DEPTH.format(depth=BLOCK_DEPTH_MAX))
        template = state.parsed.get(name)
        if template is None:
            content = state.blocks(name)
            if content is None:
                state.warn(f'there is no Content Block named "{name}"')
                text = _marker(f"Content Block {name} not found")
                buffer.write(text)
                return len(text)
            template = _ENV.from_string(translate(content))
            state.parsed[name] = template
        # A block shares the message's variables (Braze's "assign in a block" practice).
        state.stack.append(name)
        try:
            for node in template.nodes:
                node.render(context, buffer)
        finally:
            state.stack.pop()
        return 0


class _BlockTag(Tag):
    name = "braze_content_block"
    block = False

    def parse(self, stream: TokenStream) -> Node:
        token, argument = _argument(stream)
        return _BlockNode(token, json.loads(argument))


def translation_locale(
    locales: Sequence[TranslationLocale], *, language: str, country: str
) -> TranslationLocale | None:
    """The locale a person with this language and country receives: one naming both, else
    one naming the language alone (Multi-language settings: a locale is a language and,
    optionally, a country); None, and Braze sends the source text."""
    language, country = language.strip().lower(), country.strip().lower()
    if not language:
        return None
    same = [loc for loc in locales if loc.language.lower() == language]
    exact = [loc for loc in same if country and loc.country.lower() == country]
    general = [loc for loc in same if not loc.country]
    chosen = exact or general
    return chosen[0] if chosen else None


class _TranslationNode(Node):
    __slots__ = ("body", "key")

    def __init__(self, token: Token, key: str, body: list[Node]) -> None:
        super().__init__(token)
        self.key = key
        self.body = body

    def render_to_output(self, context: RenderContext, buffer: TextIO) -> int:
        state = _STATE.get()
        language = state.person.language
        text = self._translated(state, language)
        if text is not None:
            # A translation may hold Liquid like its source text.
            buffer.write(_render_nodes(_ENV.from_string(translate(text)), context))
            return 0
        for node in self.body:
            node.render(context, buffer)
        return 0

    def _translated(self, state: _State, language: str) -> str | None:
        in_block = bool(state.stack)
        if state.translations is None or in_block:
            if language:
                where = "this Content Block's" if in_block else "the"
                state.warn(
                    f"translation {self.key}: {where} translations are not loaded here; the "
                    f"preview shows the source text, not its {language} translation"
                )
            return None
        country = str(state.person.attributes.get("country") or "")
        locale = translation_locale(state.translations, language=language, country=country)
        if locale is None:
            return None
        text = locale.translation_map.get(self.key)
        if text is None:
            state.warn(
                f"translation {self.key} has no {locale.name} text in Braze: the source "
                "text is sent"
            )
        return text


class _TranslationTag(Tag):
    name = "translation"
    end = "endtranslation"

    def parse(self, stream: TokenStream) -> Node:
        token, key = _argument(stream)
        next(stream)
        block = get_parser(self.env).parse_block(stream, frozenset((self.end, TOKEN_EOF)))
        stream.expect(TOKEN_TAG, value=self.end)
        return _TranslationNode(token, key.strip(), list(block.nodes))


# --- Braze's filters -----------------------------------------------------------------------------


def _as_datetime(value: Any) -> dt.datetime | None:
    state = _STATE.get()
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in {"now", "today"}:
            return state.now
        if text.isdigit():
            return dt.datetime.fromtimestamp(int(text), tz=dt.UTC)
        try:
            parsed: dt.datetime = date_parser.parse(text)
        except (ValueError, OverflowError):
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


def _date(value: Any, fmt: Any = None) -> Any:
    moment = _as_datetime(value)
    if moment is None or fmt is None:
        return value
    # `%s` (Unix time) is documented by Braze; strftime's own is the local machine's.
    return moment.strftime(str(fmt).replace("%s", str(int(moment.timestamp()))))


def _time_zone(value: Any, zone: Any = None) -> Any:
    moment = _as_datetime(value)
    if moment is None:
        return value
    try:
        return moment.astimezone(ZoneInfo(str(zone)))
    except (ZoneInfoNotFoundError, ValueError):
        _STATE.get().warn(f'"{zone}" is not a time zone Braze knows; the time stays in UTC')
        return moment


def _hex(algorithm: str) -> Callable[[Any], str]:
    return lambda value: hashlib.new(algorithm, str(value).encode()).hexdigest()


def _hmac(algorithm: str, encoding: str) -> Callable[[Any, Any], str]:
    def sign(value: Any, key: Any = "") -> str:
        digest = hmac.new(str(key).encode(), str(value).encode(), algorithm).digest()
        return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()

    return sign


def _number(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value).replace(",", ""))
    except InvalidOperation:
        return None


def _number_with_delimiter(value: Any) -> Any:
    number = _number(value)
    if number is None:
        return value
    return f"{number:,}"


def _money(value: Any) -> Any:
    number = _number(value)
    if number is None:
        return value
    return f"{number:,.2f}"


def _property_accessor(value: Any, key: Any = None) -> Any:
    if isinstance(value, Mapping):
        return value.get(key)
    return None


def _json_escape(value: Any) -> str:
    return json.dumps(str(value))[1:-1]


BRAZE_FILTERS: dict[str, Callable[..., Any]] = {
    "base64_encode": lambda value: base64.b64encode(str(value).encode()).decode(),
    "date": _date,
    "hmac_sha1": _hmac("sha1", "hex"),
    "hmac_sha1_base64": _hmac("sha1", "base64"),
    "hmac_sha1_hex": _hmac("sha1", "hex"),
    "hmac_sha256": _hmac("sha256", "hex"),
    "hmac_sha256_base64": _hmac("sha256", "base64"),
    "hmac_sha256_hex": _hmac("sha256", "hex"),
    "hmac_sha512": _hmac("sha512", "hex"),
    "json_escape": _json_escape,
    "md5": _hex("md5"),
    "money": _money,
    "number_with_delimiter": _number_with_delimiter,
    "property_accessor": _property_accessor,
    "sha1": _hex("sha1"),
    "sha2": _hex("sha256"),
    "time_zone": _time_zone,
    "url_escape": lambda value: urllib.parse.quote(str(value), safe="/:?=&#;,@+$!*'()~"),
    "url_param_escape": lambda value: urllib.parse.quote(str(value), safe=""),
}


def _unsupported_filter(name: str) -> Callable[..., str]:
    def marker(value: Any, *args: Any, **kwargs: Any) -> str:
        _STATE.get().warn(f"the filter {name} is not previewed (Braze does not support it)")
        return _marker(f"unsupported filter: {name}")

    return marker


class _Filters(dict[str, Callable[..., Any]]):
    """Any filter the environment lacks answers with a marker, not silence."""

    def __missing__(self, name: str) -> Callable[..., Any]:
        return _unsupported_filter(name)


# --- the environment -----------------------------------------------------------------------------


class _BoundedContext(RenderContext):
    """Checks the deadline wherever a render does work: lookups, filters and loops."""

    def _check(self) -> None:
        state = _STATE.get()
        if time.monotonic() > state.deadline:
            raise _Stop(STOP_TIME.format(seconds=state.seconds))

    def get(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return super().get(*args, **kwargs)

    def filter(self, name: str, token: Token | None) -> Callable[..., object]:
        self._check()
        apply = super().filter(name, token)

        def bounded(*args: Any, **kwargs: Any) -> object:
            result = apply(*args, **kwargs)
            # One multiplication of huge integers can outlast the deadline by itself.
            if isinstance(result, int) and result.bit_length() > NUMBER_MAX_BITS:
                raise _Stop(STOP_NUMBER)
            return result

        return bounded

    def raise_for_loop_limit(self, length: int = 1) -> None:
        self._check()
        super().raise_for_loop_limit(length)


class _BoundedTemplate(BoundTemplate):
    context_class = _BoundedContext


class _PreviewEnvironment(Environment):
    template_class = _BoundedTemplate
    loop_iteration_limit = LOOP_ITERATIONS_MAX
    output_stream_limit = OUTPUT_MAX_CHARS
    local_namespace_limit = OUTPUT_MAX_CHARS
    context_depth_limit = BLOCK_DEPTH_MAX + 20


def _environment() -> Environment:
    env = _PreviewEnvironment(tolerance=Mode.STRICT)
    filters = _Filters(env.filters)
    for name in UNSUPPORTED_FILTERS:
        filters.pop(name, None)
    filters.update(BRAZE_FILTERS)
    env.filters = filters
    for tag in (_AbortTag, _ConnectedContentTag, _BlockTag, _TranslationTag):
        env.add_tag(tag)
    for name in CATALOG_TAGS:
        env.add_tag(type(f"Catalog_{name}", (_CatalogTag,), {"name": name}))
    for name in UNSUPPORTED_TAGS:
        env.add_tag(type(f"Unsupported_{name}", (_UnsupportedTag,), {"name": name}))
    return env


_ENV = _environment()


def person_globals(person: Person) -> dict[str, Any]:
    """What the template sees of `person`."""
    attributes = dict(person.attributes)
    user = {
        name: attributes.get(name, attributes.get(export_name))
        for name, export_name in STANDARD_ATTRIBUTES.items()
    }
    if person.language:
        user["language"] = person.language
    if person.time_zone:
        user["time_zone"] = person.time_zone
    scope: dict[str, Any] = {_USER: user}
    for namespace, key in NAMESPACES.items():
        value = attributes.get(key, attributes.get(namespace))
        scope[namespace] = value if isinstance(value, Mapping) else {}
    return scope


@contextmanager
def _state(state: _State) -> Iterator[None]:
    token = _STATE.set(state)
    try:
        yield
    finally:
        _STATE.reset(token)


def render_as(
    *,
    content: str,
    person: Person,
    blocks: BlockSource = no_blocks,
    catalogs: CatalogSource | None = None,
    translations: Sequence[TranslationLocale] | None = None,
    now: dt.datetime | None = None,
    samples: Mapping[str, str] | None = None,
    seconds: float = RENDER_SECONDS,
) -> Rendered:
    """`content` as `person` would receive it, or why it would not be sent or rendered."""
    state = _State(
        person=person,
        blocks=blocks,
        catalogs=catalogs or NoCatalogs(),
        translations=translations,
        now=(now or dt.datetime.now(dt.UTC)),
        samples=samples or {},
        seconds=seconds,
        deadline=time.monotonic() + seconds,
    )
    output, aborted, stopped = "", "", ""
    with _state(state):
        try:
            template = _ENV.from_string(translate(content))
            output = template.render(**person_globals(person))
        except _Abort as exc:
            aborted = exc.reason
        except _Stop as exc:
            stopped = str(exc)
        except OutputStreamLimitError:
            stopped = STOP_OUTPUT.format(size=OUTPUT_MAX_CHARS)
        except LoopIterationLimitError:
            stopped = STOP_LOOPS.format(count=LOOP_ITERATIONS_MAX)
        except LocalNamespaceLimitError:
            stopped = STOP_VARIABLES.format(size=OUTPUT_MAX_CHARS)
        except TemplateNotFoundError:
            stopped = STOP_INCLUDE.format(tag="render or include")
        except ContextDepthError:
            stopped = STOP_DEPTH.format(depth=BLOCK_DEPTH_MAX)
        except LiquidError as exc:
            stopped = f"the preview stopped: {str(exc).splitlines()[0] if str(exc) else exc}"
        except RecursionError:
            stopped = STOP_DEPTH.format(depth=BLOCK_DEPTH_MAX)
    return Rendered(
        output=output,
        warnings=tuple(state.warnings),
        aborted=aborted,
        stopped=stopped,
        calls=tuple(state.calls),
    )


def block_includes(content: str) -> list[str]:
    """The Content Blocks `content` includes, in order, as a render would resolve them.

    Parsed, never matched as text: a block's name in prose, an HTML comment, a `{% raw %}`
    or a `{% comment %}` is no include. Content that is not valid Liquid includes nothing
    the console can vouch for (Braze would not send it either).
    """
    # The linear pre-check first: it bounds what python-liquid's lexer is given.
    if liquid_error(content) is not None:
        return []
    try:
        template = _ENV.parse(translate(content))
    except (LiquidError, RecursionError):
        return []
    names: list[str] = []
    for node in walk_nodes(list(template.nodes)):
        if isinstance(node, _BlockNode) and node.block_name not in names:
            names.append(node.block_name)
    return names
