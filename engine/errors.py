"""The engine's argument errors: the message names the argument, and so does an attribute.

Callers that translate errors (the web app turns them into 422 responses naming a field) read
`argument` instead of parsing the message.
"""

from __future__ import annotations


class ArgumentError(ValueError):
    """A public engine function got a bad argument value; `argument` is its name."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument


class ArgumentTypeError(TypeError):
    """A public engine function got an argument of the wrong type; `argument` is its name."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument
