"""Writes: a bundle change request from the differences between two snapshots of content,
the import of a tree of files, and the export of one (to a directory or a zip)."""

from __future__ import annotations

import io
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from bundles.appliers import BUNDLE_PREFIX, NAME_PREFIX, RESOURCE_TYPE
from bundles.content import (
    CONTENT_BLOCK,
    EMAIL_TEMPLATE,
    KIND_LABELS,
    Changes,
    DependencyCycle,
    FileError,
    Part,
    WorkspaceContent,
    content_changes,
    content_files,
    content_from_files,
    flat_state,
)
from bundles.selectors import workspace_content
from console.changes.models import ChangeAction, ChangeRequest
from console.changes.services import ChangeRequestError, change_request_propose
from console.workspaces import Workspace
from templates_app import selectors as content_selectors

# What an uploaded or read tree may hold: the export writes nothing else.
MAX_FILES = 5000
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_TOTAL_BYTES = 50 * 1024 * 1024
KNOWN_SUFFIXES = (".json", ".liquid", ".html", ".txt")


class TreeRefused(ValueError):
    """The tree cannot be read at all, or some of its files are malformed: nothing is
    proposed. `errors` names each file and what is wrong with it."""

    def __init__(self, errors: list[FileError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


def _part_payload(part: Part, *, current: WorkspaceContent) -> dict[str, Any]:
    braze_id = current.ids.get(part.kind, {}).get(part.name)
    if part.action == "update":
        identifier = str(braze_id)
    elif part.kind == EMAIL_TEMPLATE:
        identifier = f"new:{uuid.uuid4().hex}"
    else:
        identifier = NAME_PREFIX + part.name
    payload = dict(part.after)
    if part.kind == CONTENT_BLOCK:
        # Braze never reports a block's state: keep the one the console last gave it, so
        # an import does not publish a draft.
        known = (
            content_selectors.content_block_state(content_block_id=braze_id) if braze_id else None
        )
        payload["state"] = known or "active"
    return {
        "kind": part.kind,
        "name": part.name,
        "action": part.action,
        "identifier": identifier,
        "payload": payload,
    }


def bundle_propose(
    *,
    actor: AbstractBaseUser,
    workspace: Workspace,
    current: WorkspaceContent,
    changes: Changes,
    title: str,
    submit: bool = True,
) -> ChangeRequest:
    """One change request holding every part of `changes`, in their order. Its base is
    each part's object as `current` (read from Braze just now) holds it."""
    if not changes.parts:
        raise ChangeRequestError("There is nothing to change.")
    base: dict[str, Any] = {}
    for part in changes.parts:
        base |= flat_state(part.kind, part.name, part.before)
    payload = {
        "workspace": workspace.key,
        "parts": [_part_payload(p, current=current) for p in changes.parts],
    }
    return change_request_propose(
        actor=actor,
        resource_type=RESOURCE_TYPE,
        identifier=BUNDLE_PREFIX + uuid.uuid4().hex,
        action=ChangeAction.UPDATE,
        payload=payload,
        base_snapshot=base,
        title=title,
        submit=submit,
    )


@dataclass
class ImportResult:
    change_request: ChangeRequest | None
    changes: Changes
    messages: list[str] = field(default_factory=list)


def _title(workspace: Workspace, parts: list[Part]) -> str:
    counts: dict[str, int] = {}
    for part in parts:
        counts[part.kind] = counts.get(part.kind, 0) + 1
    what = ", ".join(
        f"{n} {KIND_LABELS[k].lower()}{'s' if n > 1 else ''}" for k, n in counts.items()
    )
    return f"Import into {workspace.label}: {what}"[:200]


def content_import(
    *,
    actor: AbstractBaseUser,
    workspace: Workspace,
    files: dict[str, bytes],
    submit: bool = True,
) -> ImportResult:
    """Compare a tree with the workspace and open one bundle change request with exactly
    the differences (none when there are none). Malformed files refuse the whole tree."""
    problems = tree_problems(files)
    if problems:
        raise TreeRefused(problems)
    proposed, errors = content_from_files(files, workspace=workspace.key)
    if errors:
        raise TreeRefused(errors)
    current = workspace_content(workspace=workspace)
    try:
        changes = content_changes(current=current, proposed=proposed)
    except DependencyCycle as exc:
        raise TreeRefused([FileError("content_blocks/", str(exc))]) from None
    messages = [*changes.notices, *changes.missing]
    if not changes.parts:
        messages.insert(0, f"The files match {workspace.label}: no change request was opened.")
        return ImportResult(None, changes, messages)
    cr = bundle_propose(
        actor=actor,
        workspace=workspace,
        current=current,
        changes=changes,
        title=_title(workspace, changes.parts),
        submit=submit,
    )
    return ImportResult(cr, changes, messages)


def tree_problems(files: dict[str, bytes]) -> list[FileError]:
    """Limits every tree keeps, whichever way it arrived."""
    problems = []
    if len(files) > MAX_FILES:
        problems.append(FileError("(tree)", f"holds {len(files)} files; at most {MAX_FILES}"))
    total = 0
    for path, data in sorted(files.items()):
        total += len(data)
        if not path.endswith(KNOWN_SUFFIXES):
            problems.append(
                FileError(
                    path,
                    "is not a kind of file the export writes (" + ", ".join(KNOWN_SUFFIXES) + ")",
                )
            )
        if len(data) > MAX_FILE_BYTES:
            problems.append(FileError(path, f"is larger than {MAX_FILE_BYTES // 1024} KB"))
    if total > MAX_TOTAL_BYTES:
        problems.append(
            FileError("(tree)", f"holds more than {MAX_TOTAL_BYTES // (1024 * 1024)} MB")
        )
    return problems


def _safe_path(name: str) -> str | None:
    """A member's path inside the tree, or None when it could land outside it."""
    if "\\" in name or "\x00" in name:
        return None
    path = PurePosixPath(name)
    if path.is_absolute() or any(part in ("..", "") for part in path.parts):
        return None
    if path.parts and ":" in path.parts[0]:
        return None  # a drive letter
    return str(path)


def files_from_zip(data: bytes) -> dict[str, bytes]:
    """A zip's files, checked before anything is read: no member outside the tree (no
    absolute path, no "..", no link), none larger than the limits (by what the zip says,
    and again by what decompressing yields)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise TreeRefused([FileError("(upload)", "is not a zip file")]) from None
    problems: list[FileError] = []
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) > MAX_FILES:
        raise TreeRefused([FileError("(upload)", f"holds more than {MAX_FILES} files")])
    total = 0
    for member in members:
        total += member.file_size
        path = _safe_path(member.filename)
        if path is None:
            problems.append(FileError(member.filename, "lies outside the tree; nothing was read"))
        elif (member.external_attr >> 16) & 0o170000 == 0o120000:
            problems.append(FileError(member.filename, "is a symbolic link; only files are read"))
        elif member.file_size > MAX_FILE_BYTES:
            problems.append(FileError(path, f"is larger than {MAX_FILE_BYTES // 1024} KB"))
    if total > MAX_TOTAL_BYTES:
        problems.append(
            FileError("(upload)", f"unpacks to more than {MAX_TOTAL_BYTES // (1024 * 1024)} MB")
        )
    if problems:
        raise TreeRefused(problems)
    files: dict[str, bytes] = {}
    for member in members:
        with archive.open(member) as handle:
            # The header's size may lie: read one byte past the limit to know.
            body = handle.read(MAX_FILE_BYTES + 1)
        if len(body) > MAX_FILE_BYTES:
            raise TreeRefused([FileError(member.filename, "is larger than it says")])
        path = _safe_path(member.filename)
        assert path is not None  # checked above
        files[_without_top_folder(path, members)] = body
    return files


def _without_top_folder(path: str, members: list[zipfile.ZipInfo]) -> str:
    # A zip made by zipping the exported folder itself has that folder at the top.
    tops = {m.filename.split("/", 1)[0] for m in members}
    if len(tops) == 1 and all("/" in m.filename for m in members):
        return path.split("/", 1)[1]
    return path


def files_from_directory(root: Path) -> dict[str, bytes]:
    """A directory's files (links are refused, so nothing outside it is read)."""
    files: dict[str, bytes] = {}
    problems: list[FileError] = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if relative.split("/", 1)[0].startswith("."):
            continue  # .git and editor files beside the tree
        if path.is_symlink():
            problems.append(FileError(relative, "is a symbolic link; only files are read"))
        elif path.is_file():
            if path.stat().st_size > MAX_FILE_BYTES:
                problems.append(FileError(relative, f"is larger than {MAX_FILE_BYTES // 1024} KB"))
            else:
                files[relative] = path.read_bytes()
    if problems:
        raise TreeRefused(problems)
    return files


# Every member gets this date, so the zip of unchanged content is byte-identical too.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def content_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in sorted(files.items()):
            info = zipfile.ZipInfo(path, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def content_write(*, root: Path, files: dict[str, bytes]) -> list[str]:
    """Write the tree under `root`, removing files an earlier export wrote that the
    content no longer has (so the directory is exactly the export). Returns the paths
    removed."""
    root.mkdir(parents=True, exist_ok=True)
    removed = []
    for directory in {p.split("/", 1)[0] for p in files if "/" in p} | {
        "content_blocks",
        "email_templates",
        "preference_centers",
        "catalogs",
    }:
        for old in sorted((root / directory).glob("*")) if (root / directory).is_dir() else []:
            relative = old.relative_to(root).as_posix()
            if old.is_file() and relative not in files:
                old.unlink()
                removed.append(relative)
    for path, data in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return removed


def content_export_files(*, workspace: Workspace) -> tuple[dict[str, bytes], list[str]]:
    """The workspace's tree, and why anything was left out of it."""
    content = workspace_content(workspace=workspace)
    notices = [
        f'{KIND_LABELS[kind]} "{name}" is left out: the workspace holds more than one with '
        "that name."
        for kind, names in sorted(content.duplicates.items())
        for name in names
    ]
    return content_files(content), notices
