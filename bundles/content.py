"""A workspace's content as data, as files, and as the parts of a bundle.

`WorkspaceContent` is one snapshot of a workspace's Content Blocks, email templates,
preference centers and catalog schemas, keyed by name (names are the identity across
workspaces: Braze's ids differ in each). The export writes it as a tree of files
(`content_files`), the import reads a tree back (`content_from_files`), and
`content_changes` turns "what the workspace holds" and "what it should hold" into the
parts of one bundle change request, ordered so that a block is applied before what
includes it. Everything here is pure: reading Braze is `selectors.workspace_content`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from catalogs import rules as catalog_rules
from console.changes.diff import same
from templates_app import rules
from templates_app.liquid import included_blocks

CONTENT_BLOCK = "content_block"
EMAIL_TEMPLATE = "email_template"
PREFERENCE_CENTER = "preference_center"
CATALOG = "catalog"

KINDS = (CONTENT_BLOCK, EMAIL_TEMPLATE, PREFERENCE_CENTER)
# The order parts are applied in when includes do not decide: a catalog before the content
# that reads it, blocks before what includes them.
APPLY_ORDER = (CATALOG, *KINDS)
KIND_LABELS = {
    CONTENT_BLOCK: "Content Block",
    EMAIL_TEMPLATE: "Email template",
    PREFERENCE_CENTER: "Preference center",
    CATALOG: "Catalog schema",
}


@dataclass(frozen=True)
class Layout:
    """How one kind is written: a directory, the metadata fields (in `<stem>.json`), and
    one text file per body field (`<stem><suffix>`, written byte for byte)."""

    directory: str
    name_field: str
    metadata: tuple[str, ...]
    bodies: tuple[tuple[str, str], ...]  # (field, file suffix)

    @property
    def fields(self) -> tuple[str, ...]:
        return self.metadata + tuple(f for f, _ in self.bodies)


# The fields are exactly those of templates_app.selectors' snapshots: what the apply step
# compares for conflicts.
LAYOUTS = {
    CONTENT_BLOCK: Layout(
        "content_blocks", "name", ("name", "description", "tags"), (("content", ".liquid"),)
    ),
    EMAIL_TEMPLATE: Layout(
        "email_templates",
        "template_name",
        ("template_name", "subject", "preheader", "should_inline_css", "tags"),
        (("body", ".html"), ("plaintext_body", ".txt")),
    ),
    PREFERENCE_CENTER: Layout(
        "preference_centers",
        "name",
        ("name", "preference_center_title", "state", "options"),
        (
            ("preference_center_page_html", ".page.html"),
            ("confirmation_page_html", ".confirmation.html"),
        ),
    ),
    CATALOG: Layout("catalogs", "name", ("name", "description", "fields"), ()),
}
WORKSPACE_FILE = "workspace.json"
FORMAT = 1

# What a body field's text may include: these fields are searched for block includes.
TEXT_FIELDS = {
    CONTENT_BLOCK: ("content",),
    EMAIL_TEMPLATE: ("subject", "preheader", "body", "plaintext_body"),
    PREFERENCE_CENTER: ("preference_center_page_html", "confirmation_page_html"),
}


@dataclass
class WorkspaceContent:
    workspace: str
    # kind -> name -> snapshot (the fields of LAYOUTS[kind]).
    items: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # kind -> name -> Braze id, for a snapshot read from Braze (empty for one read from files).
    ids: dict[str, dict[str, str]] = field(default_factory=dict)
    # kind -> names the workspace holds more than once (email template names need not be
    # unique): neither exported nor changed by name.
    duplicates: dict[str, list[str]] = field(default_factory=dict)

    def of(self, kind: str) -> dict[str, dict[str, Any]]:
        return self.items.setdefault(kind, {})


# --- files ----------------------------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9 _.()+,-]*$")


def file_stem(name: str) -> str:
    """The file name an object's files start with: its name where that is a safe file
    name, else the name percent-encoded (never a path, never hidden)."""
    if _PLAIN.match(name) and not name.endswith((".", " ")):
        return name
    return quote(name, safe="").replace(".", "%2E")


def _json_text(data: Any) -> bytes:
    # Sorted keys and a trailing newline: two exports of the same content are identical.
    return (json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def content_files(content: WorkspaceContent) -> dict[str, bytes]:
    """The tree as {relative path: bytes}, sorted by path. Nothing in it changes between
    two exports of unchanged content (no dates, no ids)."""
    files = {WORKSPACE_FILE: _json_text({"format": FORMAT, "workspace": content.workspace})}
    for kind, layout in LAYOUTS.items():
        for name, snapshot in content.items.get(kind, {}).items():
            stem = f"{layout.directory}/{file_stem(name)}"
            files[f"{stem}.json"] = _json_text({f: snapshot[f] for f in layout.metadata})
            for body_field, suffix in layout.bodies:
                files[f"{stem}{suffix}"] = str(snapshot[body_field] or "").encode()
    return dict(sorted(files.items()))


@dataclass(frozen=True)
class FileError:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _checked_metadata(kind: str, data: Any) -> str | None:
    """Why this metadata cannot be the kind's, or None."""
    layout = LAYOUTS[kind]
    if not isinstance(data, dict):
        return "must be a JSON object"
    missing = [f for f in layout.metadata if f not in data]
    extra = sorted(set(data) - set(layout.metadata))
    if missing:
        return "lacks " + ", ".join(f'"{f}"' for f in missing)
    if extra:
        return "has fields this kind does not have: " + ", ".join(f'"{f}"' for f in extra)
    name = data[layout.name_field]
    if not isinstance(name, str) or not name.strip():
        return f'"{layout.name_field}" must be a non-empty text'
    for f in ("tags",):
        if f in data and not (
            isinstance(data[f], list) and all(isinstance(t, str) for t in data[f])
        ):
            return f'"{f}" must be a list of texts'
    for f in ("description", "subject", "preheader", "preference_center_title", "state"):
        if f in data and not isinstance(data[f], str):
            return f'"{f}" must be a text'
    if "should_inline_css" in data and data["should_inline_css"] not in (True, False, None):
        return '"should_inline_css" must be true, false or null'
    if kind == PREFERENCE_CENTER and not isinstance(data["options"], dict):
        return '"options" must be a JSON object'
    if kind == CATALOG and not (
        isinstance(data["fields"], list)
        and all(
            isinstance(f, dict)
            and set(f) == {"name", "type"}
            and all(isinstance(v, str) for v in f.values())
            for f in data["fields"]
        )
    ):
        return '"fields" must be a list of {"name": …, "type": …}'
    return None


def content_from_files(
    files: Mapping[str, bytes], *, workspace: str
) -> tuple[WorkspaceContent, list[FileError]]:
    """Read a tree back. Every file is accounted for: an unknown one, a body without its
    metadata, a metadata file without its bodies, bad JSON or text that is not UTF-8 is an
    error naming the file, and any error means the content must not be used."""
    content = WorkspaceContent(workspace=workspace)
    errors: list[FileError] = []
    claimed = {WORKSPACE_FILE} if WORKSPACE_FILE in files else set()
    by_directory = {layout.directory: kind for kind, layout in LAYOUTS.items()}
    for path in sorted(files):
        directory, _, filename = path.partition("/")
        if path == WORKSPACE_FILE or not filename.endswith(".json") or "/" in filename:
            continue
        kind = by_directory.get(directory)
        if kind is None:
            continue  # reported below, as a file nothing claims
        layout = LAYOUTS[kind]
        claimed.add(path)
        try:
            data = json.loads(files[path].decode("utf-8"))
        except UnicodeDecodeError:
            errors.append(FileError(path, "is not UTF-8 text"))
            continue
        except json.JSONDecodeError as exc:
            errors.append(FileError(path, f"is not valid JSON ({exc.msg}, line {exc.lineno})"))
            continue
        problem = _checked_metadata(kind, data)
        if problem:
            errors.append(FileError(path, problem))
            continue
        name = data[layout.name_field]
        stem = filename.removesuffix(".json")
        if stem != file_stem(name):
            errors.append(
                FileError(path, f'holds "{name}", so it must be named {file_stem(name)}.json')
            )
            continue
        snapshot = dict(data)
        for body_field, suffix in layout.bodies:
            body_path = f"{directory}/{stem}{suffix}"
            claimed.add(body_path)
            if body_path not in files:
                errors.append(FileError(body_path, f'is missing (the body of "{name}")'))
                continue
            try:
                snapshot[body_field] = files[body_path].decode("utf-8")
            except UnicodeDecodeError:
                errors.append(FileError(body_path, "is not UTF-8 text"))
        content.of(kind)[name] = {f: snapshot.get(f) for f in layout.fields}
    for path in sorted(set(files) - claimed):
        errors.append(
            FileError(
                path,
                "is not a file the export writes (each body needs its object's .json beside "
                "it; known folders: " + ", ".join(sorted(by_directory)) + ")",
            )
        )
    return content, errors


# --- bundles ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One change of a bundle: a create or an update of one object, by name."""

    kind: str
    name: str
    action: str  # "create" or "update"
    before: dict[str, Any] | None
    after: dict[str, Any]

    @property
    def key(self) -> str:
        return part_key(self.kind, self.name)

    @property
    def label(self) -> str:
        return f'{KIND_LABELS[self.kind]} "{self.name}"'


def part_key(kind: str, name: str) -> str:
    return f"{kind}:{name}"


def field_key(kind: str, name: str, field_name: str) -> str:
    return f"{part_key(kind, name)}/{field_name}"


def flat_state(kind: str, name: str, snapshot: Mapping[str, Any] | None) -> dict[str, Any]:
    """An object's fields keyed by kind, name and field: a bundle's snapshots are these,
    merged, so its diff has one row per changed field and its conflict check compares
    every part's fields."""
    if snapshot is None:
        return {}
    return {field_key(kind, name, f): snapshot.get(f) for f in LAYOUTS[kind].fields}


def unflat_state(kind: str, name: str, state: Mapping[str, Any]) -> dict[str, Any] | None:
    keys = {f: field_key(kind, name, f) for f in LAYOUTS[kind].fields}
    if not any(k in state for k in keys.values()):
        return None
    return {f: state.get(k) for f, k in keys.items()}


def includes(kind: str, snapshot: Mapping[str, Any]) -> frozenset[str]:
    """The Content Blocks an object's text includes (parsed as Liquid)."""
    names: set[str] = set()
    for text_field in TEXT_FIELDS.get(kind, ()):
        names |= included_blocks(str(snapshot.get(text_field) or ""))
    return frozenset(names)


class DependencyCycle(ValueError):
    pass


def dependency_order(parts: Iterable[Part]) -> list[Part]:
    """Blocks a part includes come before it when they are in the bundle too; otherwise
    new catalogs first, then blocks, templates and preference centers, each by name."""
    pending = sorted(parts, key=lambda p: (APPLY_ORDER.index(p.kind), p.name))
    blocks_in_bundle = {p.name for p in pending if p.kind == CONTENT_BLOCK}
    needs = {
        p.key: {
            part_key(CONTENT_BLOCK, n)
            for n in includes(p.kind, p.after) & blocks_in_bundle
            if not (p.kind == CONTENT_BLOCK and n == p.name)
        }
        for p in pending
    }
    ordered: list[Part] = []
    done: set[str] = set()
    while pending:
        ready = [p for p in pending if needs[p.key] <= done]
        if not ready:
            names = ", ".join(p.label for p in pending)
            raise DependencyCycle(f"These include each other, so none can go first: {names}.")
        first = ready[0]
        ordered.append(first)
        done.add(first.key)
        pending.remove(first)
    return ordered


@dataclass
class Changes:
    parts: list[Part]
    unchanged: int
    # Objects the workspace holds that the new content does not mention: left alone.
    untouched: list[str]
    # Why some objects were left out (a name the workspace holds twice, catalog schemas).
    notices: list[str]
    # Blocks included by a part that neither the workspace nor the bundle holds.
    missing: list[str]


def content_changes(*, current: WorkspaceContent, proposed: WorkspaceContent) -> Changes:
    """The parts that make `current` hold what `proposed` holds, in dependency order.
    Nothing is deleted: an object `proposed` lacks is left as it is."""
    parts: list[Part] = []
    unchanged = 0
    untouched: list[str] = []
    notices: list[str] = []
    for kind in KINDS:
        now, wanted = current.items.get(kind, {}), proposed.items.get(kind, {})
        duplicated = set(current.duplicates.get(kind, []))
        for name in sorted(wanted):
            if name in duplicated:
                notices.append(
                    f'{KIND_LABELS[kind]} "{name}" is left out: the workspace holds more than '
                    "one with that name, so the name does not say which to change."
                )
                continue
            before = now.get(name)
            if before is None:
                parts.append(Part(kind, name, "create", None, wanted[name]))
            elif same(before, wanted[name]):
                unchanged += 1
            else:
                parts.append(Part(kind, name, "update", before, wanted[name]))
        untouched += [f'{KIND_LABELS[kind]} "{n}"' for n in sorted(set(now) - set(wanted))]
    schemas_now, schemas_wanted = current.items.get(CATALOG, {}), proposed.items.get(CATALOG, {})
    for name in sorted(schemas_wanted):
        if name not in schemas_now:
            parts.append(Part(CATALOG, name, "create", None, schemas_wanted[name]))
        elif not same(schemas_now[name], schemas_wanted[name]):
            # Braze changes a catalog's fields one at a time and never its description;
            # a removed field takes its values out of every item.
            notices.append(
                f'Catalog schema "{name}" differs from the workspace\'s: a new catalog is '
                "created by an import, an existing one's fields are changed on its own screen."
            )
        else:
            unchanged += 1
    held_blocks = set(current.items.get(CONTENT_BLOCK, {}))
    bundled_blocks = {p.name for p in parts if p.kind == CONTENT_BLOCK}
    missing = sorted(
        {
            f'{part.label} includes the Content Block "{n}", which the workspace does not hold'
            for part in parts
            for n in includes(part.kind, part.after) - held_blocks - bundled_blocks
        }
    )
    return Changes(dependency_order(parts), unchanged, untouched, notices, missing)


# --- promotion ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pick:
    kind: str
    name: str


@dataclass
class PromotionPreview:
    """What promoting `picks` from one workspace to another would do."""

    # The bundle: the picks that differ, and the blocks offered with them, in apply order.
    changes: Changes
    # Picks the target already holds exactly as the source does.
    identical: list[str]
    # Blocks the picks include (directly or through another block) that the target lacks:
    # offered, and part of `changes` when taken.
    dependencies: list[str]
    # Picks, or blocks they include, that the source does not hold.
    not_in_source: list[str]
    # The offered blocks by name, and those of them the bundle takes.
    dependency_names: list[str] = field(default_factory=list)
    taken: list[str] = field(default_factory=list)


def promotion_preview(
    *,
    source: WorkspaceContent,
    target: WorkspaceContent,
    picks: Iterable[Pick],
    with_dependencies: bool = True,
    declined: Collection[str] = (),
) -> PromotionPreview:
    """Compare the picked objects of `source` with `target` by name (Braze's ids differ
    per workspace) and find the blocks they need that `target` lacks. The same snapshots
    an export writes: a promotion is the export of one workspace imported into another,
    limited to the picks. A block named in `declined` is offered but not taken (nor what
    only it includes)."""
    chosen: dict[tuple[str, str], dict[str, Any]] = {}
    not_in_source: list[str] = []
    dependencies: list[str] = []
    names: list[str] = []
    taken: list[str] = []
    for pick in picks:
        snapshot = source.items.get(pick.kind, {}).get(pick.name)
        if snapshot is None:
            not_in_source.append(f'{KIND_LABELS[pick.kind]} "{pick.name}"')
        else:
            chosen[(pick.kind, pick.name)] = snapshot
    target_blocks = target.items.get(CONTENT_BLOCK, {})
    source_blocks = source.items.get(CONTENT_BLOCK, {})
    queue = list(chosen.items())
    while queue:
        (kind, _), snapshot = queue.pop(0)
        for name in sorted(includes(kind, snapshot)):
            key = (CONTENT_BLOCK, name)
            if key in chosen or name in target_blocks:
                continue
            if name not in source_blocks:
                label = f'Content Block "{name}"'
                if label not in not_in_source:
                    not_in_source.append(label)
                continue
            if name in names:
                continue
            dependencies.append(f'Content Block "{name}"')
            names.append(name)
            if with_dependencies and name not in declined:
                taken.append(name)
                chosen[key] = source_blocks[name]
                queue.append((key, source_blocks[name]))
    proposed = WorkspaceContent(workspace=target.workspace)
    for (kind, name), snapshot in chosen.items():
        proposed.of(kind)[name] = snapshot
    changes = content_changes(current=target, proposed=proposed)
    changed = {(p.kind, p.name) for p in changes.parts}
    identical = sorted(
        f'{KIND_LABELS[kind]} "{name}"'
        for kind, name in chosen
        if (kind, name) not in changed and name not in target.duplicates.get(kind, [])
    )
    # Only what the promotion touches: the rest of the target is no concern of it.
    changes.untouched = []
    return PromotionPreview(
        changes, identical, sorted(dependencies), not_in_source, sorted(names), sorted(taken)
    )


# --- the rules Braze would refuse by ---------------------------------------------------------


def _file_of(kind: str, name: str, field_name: str) -> str:
    layout = LAYOUTS[kind]
    suffix = dict(layout.bodies).get(field_name, ".json")
    return f"{layout.directory}/{file_stem(name)}{suffix}"


def parts_errors(
    parts: Iterable[Part], *, current: WorkspaceContent, block_states: Mapping[str, str | None]
) -> list[FileError]:
    """Each part checked by its kind's rules (what Braze would refuse, in Braze's words),
    against the workspace as it will be when the part is applied: the blocks the bundle
    creates first count as held. `block_states`: the state the console last gave each
    block, by name (None: unknown)."""
    parts = list(parts)
    held_blocks = set(current.items.get(CONTENT_BLOCK, {})) | {
        p.name for p in parts if p.kind == CONTENT_BLOCK
    }
    tags = {
        tag
        for kind in (CONTENT_BLOCK, EMAIL_TEMPLATE)
        for snapshot in current.items.get(kind, {}).values()
        for tag in snapshot.get("tags") or []
    }
    centers = frozenset(current.items.get(PREFERENCE_CENTER, {}))
    errors: list[FileError] = []
    for part in parts:
        creating = part.action == "create"
        others = (
            held_blocks - {part.name} if part.kind == CONTENT_BLOCK and creating else held_blocks
        )
        workspace = rules.Workspace(
            tags=frozenset(tags), block_names=frozenset(others), preference_center_names=centers
        )
        if part.kind == CATALOG:
            errors += [
                FileError(_file_of(CATALOG, part.name, "fields"), message)
                for message in _catalog_errors(part.after)
            ]
            continue
        if part.kind == CONTENT_BLOCK:
            state = block_states.get(part.name)
            found = rules.content_block_errors(
                {**part.after, "state": state or "active"},
                workspace=workspace,
                current_name=None if creating else part.name,
                current_state=state,
            )
        elif part.kind == EMAIL_TEMPLATE:
            found = rules.email_template_errors(part.after, workspace=workspace)
        else:
            found = rules.preference_center_errors(
                part.after, workspace=workspace, creating=creating
            )
        for field_name, messages in sorted(found.items()):
            path = _file_of(part.kind, part.name, field_name)
            errors += [FileError(path, f"{field_name}: {message}") for message in messages]
    return errors


def _catalog_errors(schema: Mapping[str, Any]) -> list[str]:
    fields = [(str(f["name"]), str(f["type"])) for f in schema["fields"]]
    return [
        *catalog_rules.catalog_name_errors(str(schema["name"])),
        *catalog_rules.description_errors(str(schema["description"])),
        *(m for name, _ in fields for m in catalog_rules.field_name_errors(name)),
        *catalog_rules.fields_errors(fields),
    ]
