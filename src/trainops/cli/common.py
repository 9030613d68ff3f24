"""Options shared by the commands, defined once, and the console the CLI prints to."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from pydantic import BaseModel, TypeAdapter, ValidationError
from rich.console import Console
from rich.text import Text

from trainops.client import TrainOps, connect
from trainops.client.base import invalid_input
from trainops.errors import TrainOpsError

# markup off: what a user wrote (a run's name, a cancel reason, a description, a key of a strategy file) prints as
# written, brackets included; "[/x]" would otherwise be read as a closing tag and fail the command. Styles come from
# Text objects the CLI builds.
console = Console(markup=False)
err_console = Console(stderr=True, markup=False)


def error_line(message: str) -> Text:
    """``Error: <message>`` as the CLI says it, the message printed as written."""
    return Text.assemble(("Error:", "bold red"), " ", message)


UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="TRAINOPS_URL",
        help="trainops server to talk to; leave unset to work on the local database directly.",
        show_default=False,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="TRAINOPS_API_TOKEN",
        help="Bearer token for the server (prefer TRAINOPS_API_TOKEN: a command line shows in ps).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]


def open_client(url: str | None, token: str | None) -> TrainOps:
    return connect(url=url, token=token)


def print_json(value: BaseModel | dict[str, Any] | list[Any], *, line: bool = False) -> None:
    """One JSON document on stdout (no Rich markup, no wrapping): safe to pipe into jq.

    With ``line`` it is a single compact line, for streams of events (JSON Lines).
    """
    indent = None if line else 2
    if isinstance(value, BaseModel):
        text = value.model_dump_json(indent=indent)
    else:
        text = TypeAdapter(Any).dump_json(value, indent=indent).decode()
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


_SEND_FIELD = re.compile(r'send "(?P<field>[\w.]+)": ?(?P<value>"[^"]*"|[^\s,;)]+)')
_LOCATION = re.compile(r"(?P<start>^|; )(?P<field>[\w.]+): ")
_SEND_OPTION = re.compile(r"\bsend (?=(?:either |exactly one of |both |only )?(?:-{1,2}[a-z]|[A-Z_]{2,}\b))")


def in_option_words(message: str, options: Mapping[str, str]) -> str:
    """``message`` with the request's JSON fields it names replaced by the command's options or arguments.

    ``options`` maps a JSON field (dotted for a nested one: ``policy.patience``) to what the user types
    (``--patience``, or ``NAME`` for an argument). A field is replaced where it is surely a field: in
    ``send "field": value``, quoted, at the head of a ``field: problem`` part, or spelled with an underscore
    (``start_date``); a field that is also a plain word (``symbol``) is left alone elsewhere in the prose.

    >>> in_option_words('the name is taken; choose another or send "overwrite": true', {"overwrite": "--overwrite"})
    'the name is taken; choose another or pass --overwrite'
    >>> in_option_words("start_date 2018-01-12 is after end_date 2018-01-10",
    ...                 {"start_date": "--start", "end_date": "--end"})
    '--start 2018-01-12 is after --end 2018-01-10'
    """

    def sent(match: re.Match[str]) -> str:
        option = options.get(match["field"])
        if option is None:
            return match[0]
        value = match["value"]
        if value == "true":
            return f"pass {option}"
        if value == "false":
            return f"leave out {option}"
        return f"pass {option} {value.strip(chr(34))}"

    def located(match: re.Match[str]) -> str:
        option = options.get(match["field"])
        return match[0] if option is None else f"{match['start']}{option}: "

    message = _LOCATION.sub(located, _SEND_FIELD.sub(sent, message))
    for field, option in options.items():
        quoted = rf"([\"'`]){re.escape(field)}\1"
        message = re.sub(quoted, option, message)
        if "_" in field or "." in field:
            message = re.sub(rf"(?<![\w.-]){re.escape(field)}(?![\w-])", option, message)
    return _SEND_OPTION.sub("give ", message)


@contextmanager
def speaking_options(options: Mapping[str, str]) -> Iterator[None]:
    """Errors raised inside speak of the command's options, not of the JSON fields of the request it sends.

    The API and the services word their errors for whoever sends the JSON (``send "overwrite": true``); a
    command wraps building and sending its request in this, with a map from each field to its option, and the
    user reads ``pass --overwrite``. A model that refuses an option's value becomes the same one-line
    :class:`~trainops.errors.InvalidInputError`.

    Example:
        >>> with speaking_options({"overwrite": "--overwrite"}):  # doctest: +SKIP
        ...     ops.save_model(request)
    """
    try:
        yield
    except ValidationError as error:
        refused = invalid_input(error)
        refused.message = in_option_words(refused.message, options)
        refused.args = (refused.message,)
        raise refused from None
    except TrainOpsError as error:
        error.message = in_option_words(error.message, options)
        error.args = (error.message,)
        raise
