"""Server paths out of error answers: a remote client learns which file is missing, not where the server keeps it.

Errors are written for the person who reads them, and in-process (the CLI, ``LocalTrainOps``) that person is on
the machine: ``/srv/trainops/data/EURUSD_1h.csv does not exist`` is the most useful message. Over HTTP the same
message would tell anyone who can reach the API the server's directory layout (and its user's name, in
``/home/alice/...``). So the API rewrites each path under one of trainops' folders as the file's name in that
folder, named by its setting (``EURUSD_1h.csv in the data folder (TRAINOPS_DATA_DIR)``), and the server log keeps
the full message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from trainops.settings import Settings

# What may follow a folder in a message to continue its path: a "/" then anything up to a space or a quote, minus
# the punctuation that ends a sentence or a parenthesis (and not more letters: /srv/data2 is not in /srv/data).
_REST = r"(?=[/\s'\"`.,;:)\]]|$)(?P<rest>/[^\s'\"`]*[^\s'\"`.,;:)\]])?"


class ServerPaths:
    """Rewrites the paths under trainops' configured folders in text meant for a remote client.

    >>> paths = ServerPaths([(Path("/srv/data"), "the data folder (TRAINOPS_DATA_DIR)")])
    >>> paths.redact("cannot read /srv/data/EURUSD_1h.csv: no bars")
    'cannot read EURUSD_1h.csv in the data folder (TRAINOPS_DATA_DIR): no bars'
    >>> paths.redact("/srv/data is empty")
    'the data folder (TRAINOPS_DATA_DIR) is empty'
    """

    def __init__(self, folders: Iterable[tuple[Path, str]]) -> None:
        spelled: dict[str, str] = {}
        for folder, label in folders:
            for variant in {str(folder), str(folder.resolve())}:
                if variant not in ("/", "."):
                    spelled.setdefault(variant.rstrip("/"), label)
        # the longest first: the data folder inside the home folder is named as the data folder
        self._patterns = [
            (re.compile(re.escape(text) + _REST), label)
            for text, label in sorted(spelled.items(), key=lambda item: -len(item[0]))
        ]

    @classmethod
    def of(cls, settings: Settings) -> ServerPaths:
        """The folders a server's settings configure: data, models, artifacts, strategies and home."""
        return cls(
            [
                (settings.resolved_data_dir, "the data folder (TRAINOPS_DATA_DIR)"),
                (settings.resolved_models_dir, "the models folder (TRAINOPS_MODELS_DIR)"),
                (settings.resolved_artifacts_dir, "the artifacts folder (TRAINOPS_ARTIFACTS_DIR)"),
                (settings.resolved_strategies_dir, "the strategies folder (TRAINOPS_STRATEGIES_DIR)"),
                (settings.home.expanduser(), "the trainops home folder (TRAINOPS_HOME)"),
            ]
        )

    def redact(self, text: str) -> str:
        """``text`` with each path under a folder as ``NAME in LABEL``, and each folder as its label."""
        for pattern, label in self._patterns:
            text = pattern.sub(partial(_name_in, label=label), text)
        return text

    def redact_details(self, value: Any) -> Any:
        """:meth:`redact` applied to every text inside an error's ``details``."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {key: self.redact_details(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_details(item) for item in value]
        return value


def _name_in(found: re.Match[str], *, label: str) -> str:
    rest = found.group("rest")
    return f"{rest.lstrip('/')} in {label}" if rest else label
