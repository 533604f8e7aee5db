"""Parsing ``key=value`` settings from the command line into typed values."""

import ast
from collections.abc import Iterable
from typing import Any

from mmea_bench.errors import UserError, unknown_name

TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


def parse_value(option: str, text: Any, default: Any) -> Any:
    """``text`` as the type of ``default`` (bool, int, float, str); a Python literal or a string when it has none."""
    if not isinstance(text, str):
        return text
    try:
        if isinstance(default, bool):
            if text.lower() not in TRUE + FALSE:
                raise ValueError
            return text.lower() in TRUE
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        raise UserError(f"{option}: expected a {type(default).__name__}, got '{text}'") from None
    if isinstance(default, str):
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_assignments(option: str, items: Iterable[str]) -> dict[str, str]:
    """``["a=1", "b=x"]`` to ``{"a": "1", "b": "x"}``; an item without ``=`` is an error naming ``option``."""
    parsed = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{option} {item}: expected KEY=VALUE")
        parsed[key.strip()] = value.strip()
    return parsed


def parse_named(option: str, text: str) -> tuple[str, dict[str, str]]:
    """``NAME:key=value,...`` (a dataset, an executor) to its name and its parameters as text."""
    name, _, arguments = text.partition(":")
    items = [item for item in arguments.split(",") if item]
    return name.strip(), parse_assignments(f"{option} {text}:", items)


def typed_params(option: str, params: dict[str, str], defaults: dict[str, Any], owner: str) -> dict[str, Any]:
    """``params`` as the types of a factory's ``defaults``; a name it does not take is an error naming ``owner``."""
    for key in params:
        if key not in defaults:
            raise unknown_name(f"parameter of {owner}", key, defaults)
    return {key: parse_value(f"{option}:{key}", text, defaults[key]) for key, text in params.items()}
