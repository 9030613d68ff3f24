"""The diagnosis policy's options, generated from :class:`MonitorPolicy`'s fields so the CLI cannot drift from it.

Every field is an option named after it (``stop_rule`` is ``--stop-rule``, a bool is a ``--x/--no-x`` flag) whose
help is the field's description and whose default is the model's; ``--set FIELD=VALUE`` also reaches any field.
The model checks the values, so a bad one reads as the model's message (``patience: Input should be ...``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, TypeVar

import typer
from pydantic.fields import FieldInfo

from trainops.core.policy import MonitorPolicy, PolicyText
from trainops.errors import InvalidInputError

_R = TypeVar("_R")

SETTINGS_PARAMETER = "policy_settings"
"""The Python name of ``--set`` in a command's signature (the policy's field names are the other options')."""


def option_name(field: str) -> str:
    """``--stop-rule`` for ``stop_rule``."""
    return "--" + field.replace("_", "-")


def policy_options(command: Callable[..., _R]) -> Callable[..., _R]:
    """Replace a command's ``policy: MonitorPolicy`` parameter with one option per policy field and ``--set``.

    The command receives the :class:`MonitorPolicy` those options make (:func:`build_policy`): options left out
    stay unset, so the model's defaults apply and the policy knows what was chosen.

    Example:
        >>> @policy_options
        ... def judge(policy: MonitorPolicy) -> MonitorPolicy:
        ...     return policy
        >>> judge(patience=3, policy_settings=["stop_rule=patience"]).model_dump(exclude_unset=True)
        {'patience': 3, 'stop_rule': 'patience'}
    """
    signature = inspect.signature(command, eval_str=True)
    parameters = list(signature.parameters.values())
    names = [parameter.name for parameter in parameters]
    clashes = set(names) & {*MonitorPolicy.model_fields, SETTINGS_PARAMETER}
    if "policy" not in names or clashes:
        raise TypeError(f"{command.__name__}: policy_options needs a 'policy' parameter and none of {sorted(clashes)}")
    at = names.index("policy")
    kind = parameters[at].kind
    options = [_option(name, field, kind) for name, field in MonitorPolicy.model_fields.items()]
    generated = [*parameters[:at], *options, _settings_option(kind), *parameters[at + 1 :]]

    @functools.wraps(command)
    def with_policy(*args: Any, **kwargs: Any) -> _R:
        given = {name: kwargs.pop(name, None) for name in MonitorPolicy.model_fields}
        kwargs["policy"] = build_policy(given, kwargs.pop(SETTINGS_PARAMETER, None))
        return command(*args, **kwargs)

    with_policy.__signature__ = signature.replace(parameters=generated)  # type: ignore[attr-defined]
    with_policy.__annotations__ = {parameter.name: parameter.annotation for parameter in generated}
    return with_policy


def build_policy(given: Mapping[str, Any], pairs: Sequence[str] | None = None) -> MonitorPolicy:
    """The policy of the options given (``None``: left out) and the ``--set FIELD=VALUE`` pairs.

    Raises:
        typer.BadParameter: a pair that is not ``FIELD=VALUE``, or a field given twice.
        InvalidInputError: a pair whose field is not a policy setting.
        pydantic.ValidationError: a value the model refuses (the CLI prints ``field: problem``, exit code 1).
    """
    fields = {name: value for name, value in given.items() if value is not None}
    for pair in pairs or []:
        name, equals, value = (part.strip() for part in pair.partition("="))
        if not equals or not name:
            raise typer.BadParameter(f"{pair!r}: use FIELD=VALUE, e.g. flat_tolerance_pct=2", param_hint="--set")
        if name not in MonitorPolicy.model_fields:
            raise InvalidInputError(
                f"--set {pair}: {name!r} is not a policy setting; use one of {', '.join(MonitorPolicy.model_fields)}"
            )
        if name in fields:
            raise typer.BadParameter(
                f"{name} is given twice: use {option_name(name)} or --set {name}=..., once", param_hint="--set"
            )
        fields[name] = value
    return PolicyText.model_validate(fields).policy()


def _option(name: str, field: FieldInfo, kind: Any) -> inspect.Parameter:
    flag = option_name(name)
    bare = flag.removeprefix("--")
    declaration = f"{flag}/--no-{bare}" if field.annotation is bool else flag
    # The option's own default is None (left out), so the policy knows what was chosen; its help shows the model's.
    default = field.default
    if isinstance(default, bool):
        default = bare if default else f"no-{bare}"
    shown = "" if default is None else f" \\[default: {default}]"  # escaped: help text is Rich markup
    option = typer.Option(declaration, help=f"{field.description}{shown}", show_default=False)
    annotation: Any = field.annotation
    return inspect.Parameter(name, kind, default=None, annotation=Annotated[annotation | None, option])


def _settings_option(kind: Any) -> inspect.Parameter:
    option = typer.Option(
        "--set",
        metavar="FIELD=VALUE",
        help="Any policy setting by its MonitorPolicy name (repeatable), e.g. --set flat_tolerance_pct=2.",
        show_default=False,
    )
    return inspect.Parameter(SETTINGS_PARAMETER, kind, default=None, annotation=Annotated[list[str] | None, option])
