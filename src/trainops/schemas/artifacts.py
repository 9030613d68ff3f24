"""Wire types of artifacts: the files logged to an operation, and the rule their names follow.

An artifact's ``path`` is a relative POSIX path of plain names (``checkpoints/best.pt``). The rule is checked
the same way by the server, the store and both client transports, so a name is refused before any byte of its
file is sent, and a stored name is one every operating system can write back to disk.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from trainops.errors import InvalidInputError

MAX_SEGMENT_LENGTH = 255
"""Characters in one name between slashes: the file-name limit of ext4, APFS and NTFS."""
MAX_PATH_LENGTH = 1024
"""Characters in a whole artifact path."""

_PLAIN = re.compile(r"[A-Za-z0-9._-]+")
_NOT_PLAIN = re.compile(r"[^A-Za-z0-9._-]")
# Names Windows reserves for devices, with or without an extension (``con.txt`` too): a download there would fail
# or write to the device.
_WINDOWS_DEVICES = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{n}" for n in range(10)), *(f"lpt{n}" for n in range(10))}
)

_NAME = rf"[A-Za-z0-9._-]{{0,{MAX_SEGMENT_LENGTH - 1}}}[A-Za-z0-9_-]"  # never ending with ".": not "." nor ".."
ARTIFACT_PATH_SCHEMA = {
    "minLength": 1,
    "maxLength": MAX_PATH_LENGTH,
    "pattern": f"^{_NAME}(?:/{_NAME})*$",
    "not": {
        "pattern": "(?:^|/)(?:"
        + "|".join("".join(f"[{c.lower()}{c.upper()}]" for c in device) for device in ("con", "prn", "aux", "nul"))
        + "|[Cc][Oo][Mm][0-9]|[Ll][Pp][Tt][0-9])(?:[.]|/|$)"
    },
}
"""The rule of :func:`artifact_path_problem` as the OpenAPI document states it (Windows device names excluded)."""

ARTIFACT_PATH_RULE = (
    "use a relative path of plain names joined by '/' (ASCII letters, digits, '.', '_', '-'; "
    f"at most {MAX_SEGMENT_LENGTH} characters per name and {MAX_PATH_LENGTH} in all), like 'checkpoints/best.pt'"
)


class ArtifactInfo(BaseModel):
    """One file logged to an operation."""

    model_config = ConfigDict(frozen=True)

    path: str = Field(description="where the file sits among the operation's artifacts, e.g. checkpoints/best.pt")
    size: int = Field(ge=0, description="bytes")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the content, hex")
    created_at: datetime = Field(description="when this content was stored (a re-upload replaces it)")


def _shown(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def _segment_problem(segment: str) -> str | None:
    if segment == "":
        return "it has an empty name (two slashes in a row, or a trailing '/')"
    if segment in {".", ".."}:
        return f"the name {segment!r} is not allowed (an artifact cannot point up or at its own directory)"
    if len(segment) > MAX_SEGMENT_LENGTH:
        return f"the name {_shown(segment)} has {len(segment):,} characters (at most {MAX_SEGMENT_LENGTH})"
    if not _PLAIN.fullmatch(segment):
        bad = _NOT_PLAIN.search(segment)
        shown = repr(bad[0]) if bad else "a character"
        return f"the name {_shown(segment)} holds {shown}, which is not a letter, digit, '.', '_' or '-'"
    if segment.split(".", 1)[0].lower() in _WINDOWS_DEVICES:
        return f"the name {segment!r} is a device name on Windows (CON, PRN, AUX, NUL, COM0-9, LPT0-9)"
    if segment.endswith("."):
        return f"the name {segment!r} ends with '.', which Windows drops"
    return None


def artifact_path_problem(path: str) -> str | None:
    """What is wrong with ``path`` as an artifact path, or ``None`` when it follows the rule.

    >>> artifact_path_problem("checkpoints/best.pt") is None
    True
    >>> artifact_path_problem("../../etc/passwd")
    "the name '..' is not allowed (an artifact cannot point up or at its own directory)"
    """
    if not path:
        return "it is empty"
    if "\x00" in path:
        return "it holds a NUL byte"
    if len(path) > MAX_PATH_LENGTH:
        return f"it has {len(path):,} characters (at most {MAX_PATH_LENGTH:,})"
    if "\\" in path:
        return "it holds a backslash; separate names with '/'"
    if path.startswith("/"):
        return "it is absolute (starts with '/'); give it relative to the operation's artifacts"
    for segment in path.split("/"):
        problem = _segment_problem(segment)
        if problem:
            return problem
    return None


def check_artifact_path(path: str, *, what: str = "artifact path") -> str:
    """``path`` when it is a safe artifact path.

    Args:
        path: The candidate, e.g. ``checkpoints/best.pt``.
        what: How the message names it (``artifact_path`` for a directory argument, ``file name`` for a local
            file's name).

    Raises:
        InvalidInputError: the path breaks the rule; the message says which part and the rule.

    >>> check_artifact_path("plots/loss.png")
    'plots/loss.png'
    >>> check_artifact_path("/etc/passwd")
    Traceback (most recent call last):
    ...
    trainops.errors.InvalidInputError: artifact path '/etc/passwd' is invalid: it is absolute (starts with '/'); ...
    """
    if not isinstance(path, str):
        raise InvalidInputError(f"{what} must be a string, got {type(path).__name__}")
    problem = artifact_path_problem(path)
    if problem:
        raise InvalidInputError(
            f"{what} {_shown(path)} is invalid: {problem}; {ARTIFACT_PATH_RULE}",
            details={"path": path[: MAX_PATH_LENGTH + 1], "problem": problem},
        )
    return path


def artifact_location(filename: str, artifact_path: str | None = None) -> str:
    """Where a logged file is stored, as MLflow names it: ``artifact_path`` is a directory among the operation's
    artifacts, and the file keeps its own name in it (``artifact_location("best.pt", "checkpoints")`` is
    ``checkpoints/best.pt``); ``None`` (or ``""``) is the top. A trailing ``/`` on ``artifact_path`` is ignored.

    Raises:
        InvalidInputError: the directory or the file name breaks the rule of :func:`check_artifact_path`.

    >>> artifact_location("best.pt", "checkpoints/")
    'checkpoints/best.pt'
    >>> artifact_location("loss.png")
    'loss.png'
    """
    name = check_artifact_path(filename, what="file name")
    if artifact_path is None or artifact_path in {"", "/"}:
        return name
    directory = artifact_path[:-1] if artifact_path.endswith("/") else artifact_path
    check_artifact_path(directory, what="artifact_path")
    return check_artifact_path(f"{directory}/{name}")
