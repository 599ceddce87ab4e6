"""A tree of content files read from a directory or a zip, and written as either: the
limits every tree keeps, and a zip's members checked before anything is read."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path, PurePosixPath

from bundles.content import FileError

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
