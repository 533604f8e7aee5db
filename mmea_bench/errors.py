"""Errors a user can act on: the CLI prints them as one line and exits with code 2."""

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """Bad input (a name, an option, a file): the message says what was wrong, where, and what is allowed."""


class PluginError(UserError):
    """A plugin failed to load or registered something invalid."""


def unknown_name(kind: str, name: str, available: Iterable[str]) -> UserError:
    """The error for a name that is not registered: lists what is, with a did-you-mean where one is close."""
    available = sorted(available)
    close = difflib.get_close_matches(name, available, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return UserError(f"unknown {kind} '{name}'.{hint} Available: {', '.join(available) or 'none'}.")
