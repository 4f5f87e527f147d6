"""DictAction: ``--cfg-options key=value ...`` on the command line, parsed into a dict.

Each token is ``KEY=VALUE``. The value is read with a small grammar, not ``eval``:

* ``[a, b]`` is a list and ``(a, b)`` a tuple; they nest (``[(1,2),[3,'a']]``);
* a comma outside brackets and quotes makes a list (``1,2,3`` -> ``[1, 2, 3]``);
* ``'...'`` or ``"..."`` is a string taken literally, commas and brackets included
  (``'"x,y"'`` -> ``'x,y'``);
* anything else is an int, a float, ``True``/``False`` (any case), ``None``, or
  else the text itself as a string.

Several tokens, and several occurrences of the option, merge into one dict
(a later value for the same key wins). The keys are left dotted for
``Config.merge_from_dict`` to interpret.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

__all__ = ["DictAction"]

_PAIRS = {"[": "]", "(": ")"}
_QUOTES = "'\""


class DictAction(argparse.Action):
    """An argparse action that collects ``KEY=VALUE`` tokens into a dict.

    Use it with ``nargs='+'``; the option's value is a dict of dotted keys to parsed
    values, ready for :meth:`Config.merge_from_dict`. A token without ``=`` or with
    unbalanced brackets or quotes is reported by argparse as a usage error that
    names the token.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> _ = parser.add_argument("--cfg-options", nargs="+", action=DictAction)
        >>> args = parser.parse_args(["--cfg-options", "lr=0.1", "steps=[3,6]", "amp=True"])
        >>> args.cfg_options
        {'lr': 0.1, 'steps': [3, 6], 'amp': True}
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        tokens = [values] if isinstance(values, str) else list(values or [])
        current = getattr(namespace, self.dest, None)
        options: dict[str, Any] = dict(current) if isinstance(current, dict) else {}
        for token in tokens:
            key, sep, text = str(token).partition("=")
            if not sep or not key:
                raise argparse.ArgumentError(
                    self, f"expected KEY=VALUE, got {token!r} (no '=' or empty key)"
                )
            try:
                options[key] = self.parse_value(text)
            except ValueError as err:
                raise argparse.ArgumentError(self, f"cannot parse {token!r}: {err}") from None
        setattr(namespace, self.dest, options)

    @staticmethod
    def parse_value(text: str) -> Any:
        """Parse the VALUE part of one ``KEY=VALUE`` token.

        Args:
            text: The text after ``=``.

        Returns:
            An int, float, bool, None, str, list or tuple (see the module rules).

        Raises:
            ValueError: Brackets or quotes are unbalanced, or a list has an empty item.

        Example:
            >>> DictAction.parse_value("[(1,2),[3,'a']]")
            [(1, 2), [3, 'a']]
            >>> DictAction.parse_value("1,2.5,x")
            [1, 2.5, 'x']
        """
        items = _split(text)
        if len(items) > 1:
            return [_parse_item(item) for item in _drop_trailing_empty(items, text)]
        return _parse_item(text)


def _split(text: str) -> list[str]:
    """Split ``text`` at commas outside brackets and quotes, checking balance.

    A quote character opens a quoted string only at the start of an item (after
    ``,``, ``[``, ``(`` or the beginning), so an apostrophe inside a word is text.
    """
    parts: list[str] = []
    stack: list[str] = []
    quote = ""
    item_start = True
    start = 0
    for pos, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
            continue
        if char.isspace():
            continue
        if char in _QUOTES and item_start:
            quote = char
        elif char in _PAIRS:
            stack.append(_PAIRS[char])
        elif char in ")]":
            if not stack or stack.pop() != char:
                raise ValueError(f"unbalanced {char!r} at position {pos} in {text!r}")
        elif char == "," and not stack:
            parts.append(text[start:pos])
            start = pos + 1
        item_start = char in ",[("
    if quote:
        raise ValueError(f"unclosed quote {quote} in {text!r}")
    if stack:
        raise ValueError(f"missing {''.join(reversed(stack))!r} in {text!r}")
    parts.append(text[start:])
    return parts


def _drop_trailing_empty(items: list[str], text: str) -> list[str]:
    """Allow one trailing comma (``[1,]``, ``(1,)``); reject other empty items."""
    if items and not items[-1].strip():
        items = items[:-1]
    if any(not item.strip() for item in items):
        raise ValueError(f"empty item between commas in {text!r}")
    return items


def _parse_item(text: str) -> Any:
    stripped = text.strip()
    if stripped[:1] in _PAIRS and stripped[-1:] == _PAIRS[stripped[0]] and len(stripped) > 1:
        inner = stripped[1:-1]
        items = _split(inner)
        if len(items) == 1 and not items[0].strip():
            items = []
        else:
            items = _drop_trailing_empty(items, inner)
        parsed = [_parse_item(item) for item in items]
        return parsed if stripped[0] == "[" else tuple(parsed)
    if len(stripped) >= 2 and stripped[0] in _QUOTES and stripped[-1] == stripped[0]:
        return stripped[1:-1]
    return _parse_scalar(stripped)


def _parse_scalar(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text == "None":
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text
