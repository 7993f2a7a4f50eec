"""Parameter values converted without pydantic where typer's answer is plain; typer itself for everything else.

typer 0.29 coerces every parameter value, defaults included, through a pydantic TypeAdapter built per parameter:
importing pydantic and building the adapters costs about 0.1 s of every run, as much as reading 20 MB of
counters (bench/diagnose_size.py). iovkit's parameters are simple (str, int, float, bool, Path, their Optional,
Literal choices, lists of those), and for a plainly valid value (`30`, `0.5`, `json`, `capture.csv`) typer's
answer is obvious. `use_plain_coercion` gives each such parameter a runtime param that returns that answer
itself and hands every other value (anything invalid or unusual: `1_000`, ` 1`, `inf`, an out-of-range number,
a choice in another case that typer would still refuse) to typer's own runtime param, built on first use, so
results and error messages stay typer's byte for byte. tests/test_cli_coerce.py walks every parameter of every
command with valid, invalid and edge values through both paths: a typer upgrade that changes semantics fails
there loudly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typer._click import Command, Context
from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
from typer._param_types import choice_coercion_annotation, coerce_cli_choice, coerce_cli_path, routes_to_path
from typer._typing import get_args, get_origin
from typer.core import TyperGroup, _TyperParameter

_TYPERS = object()  # "not plain: ask typer"
_INT = re.compile(r"-?[0-9]{1,18}")
_FLOAT = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,15})?")
# bool strings pydantic reads (typer strips them first; "" is False): the exact spellings only, the rest to typer
_BOOLS = {
    "1": True, "true": True, "yes": True, "on": True, "t": True, "y": True,
    "0": False, "false": False, "no": False, "off": False, "f": False, "n": False,
}  # fmt: skip

Convert = Callable[[Any, _TyperParameter, Context], Any]


@dataclass(frozen=True)
class PlainRuntimeParam(RuntimeParam):
    """typer's RuntimeParam contract: `convert` answers plain values, typer's own runtime param the rest."""

    descriptor: TypeDescriptor = field(compare=False)
    convert: Convert = field(compare=False)

    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: Context) -> Any:
        got = self.convert(value, param, ctx)
        if got is _TYPERS:
            return build_runtime_param(self.descriptor)._coerce_value(value, param=param, ctx=ctx)
        return got


def use_plain_coercion(command: Command) -> None:
    """Give every typer parameter of `command` and its subcommands a plain runtime param where one fits (the
    help option too, which click makes on first use)."""
    todo = [command]
    while todo:
        cmd = todo.pop()
        for param in cmd.params:
            _use_plain(param)
        setattr(cmd, "get_help_option", _help_option_made_plain(cmd.get_help_option))  # noqa: B010 - on the instance
        if isinstance(cmd, TyperGroup):
            todo.extend(cmd.commands.values())


def _use_plain(param: object) -> None:
    if isinstance(param, _TyperParameter) and param._runtime_param is None:
        plain = plain_runtime_param(param.type_descriptor)
        if plain is not None:
            param._runtime_param = plain


def _help_option_made_plain(make: Callable[[Context], Any]) -> Callable[[Context], Any]:
    def get_help_option(ctx: Context) -> Any:
        option = make(ctx)
        _use_plain(option)
        return option

    return get_help_option


def plain_runtime_param(desc: TypeDescriptor) -> PlainRuntimeParam | None:
    """A runtime param for `desc` when its type is one this module knows, else None (typer's own, as ever)."""
    info = desc.parameter_info
    if desc.is_file or info.parser is not None or getattr(info, "click_type", None) is not None:
        return None
    annotation = desc.annotation
    is_list = get_origin(annotation) is list
    leaf = _leaf(get_args(annotation)[0] if is_list else annotation, desc)
    if leaf is None:
        return None
    convert = _list_of(leaf) if is_list else leaf
    return PlainRuntimeParam(annotation=annotation, parameter_info=info, descriptor=desc, convert=convert)


def _leaf(annotation: Any, desc: TypeDescriptor) -> Convert | None:
    info = desc.parameter_info
    choice = choice_coercion_annotation(annotation, info)
    if choice is not None:
        return _choice(choice[0], choice[1])
    if annotation is str:
        return _str
    if annotation is bool:
        return _bool
    if annotation is int or annotation is float:
        if info.clamp:
            return None
        return _number(annotation, info.min, info.max)
    if routes_to_path(annotation, info):
        path_type: Any = info.path_type
        if path_type is None and isinstance(annotation, type) and issubclass(annotation, Path):
            path_type = annotation
        if not (isinstance(path_type, type) and issubclass(path_type, Path)):
            return None
        return _path(path_type, desc)
    return None


def _str(value: Any, param: _TyperParameter, ctx: Context) -> Any:
    return value if type(value) is str else _TYPERS


def _bool(value: Any, param: _TyperParameter, ctx: Context) -> Any:
    if type(value) is bool:
        return value
    return _BOOLS.get(value, _TYPERS) if type(value) is str else _TYPERS


def _number(kind: type[int] | type[float], low: float | None, high: float | None) -> Convert:
    pattern = _INT if kind is int else _FLOAT

    def convert(value: Any, param: _TyperParameter, ctx: Context) -> Any:
        if type(value) is str and pattern.fullmatch(value):
            got = kind(value)
        elif type(value) is kind or (kind is float and type(value) is int and abs(value) < 2**53):
            got = kind(value)
            if got != got or got in (float("inf"), float("-inf")):
                return _TYPERS
        else:
            return _TYPERS
        if (low is not None and got < low) or (high is not None and got > high):
            return _TYPERS  # typer's message names the bound
        return got

    return convert


def _choice(choices: tuple[Any, ...], case_sensitive: bool) -> Convert:
    def convert(value: Any, param: _TyperParameter, ctx: Context) -> Any:
        if type(value) is not str:
            return _TYPERS
        try:
            return coerce_cli_choice(value, choices=choices, case_sensitive=case_sensitive, ctx=ctx)
        except ValueError:
            return _TYPERS

    return convert


def _path(path_type: type, desc: TypeDescriptor) -> Convert:
    info = desc.parameter_info

    def convert(value: Any, param: _TyperParameter, ctx: Context) -> Any:
        if type(value) is not str or not value or not value.isprintable():
            return _TYPERS  # "", NUL, control characters, undecodable bytes: typer decides
        path = path_type(value)
        if str(path) != value:
            return _TYPERS  # `./a/`, `a//b`: typer's messages quote the text as typed
        # typer turns the text into path_type with pydantic, then checks the file with its own function
        return coerce_cli_path(path, info, path_type=path_type, param=param, ctx=ctx)

    return convert


def _list_of(leaf: Convert) -> Convert:
    def convert(value: Any, param: _TyperParameter, ctx: Context) -> Any:
        if not isinstance(value, (list, tuple)):
            return _TYPERS
        out = [leaf(v, param, ctx) for v in value]
        return _TYPERS if any(v is _TYPERS for v in out) else out

    return convert
