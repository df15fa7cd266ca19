"""The limits on what a case file may contain, each defined once, with the option that raises it.

Every limit bounds the time and memory a case can take before anything
reads it completely: the file size is checked with stat before the file
is opened, nesting depth, collection lengths, the values in the file and
the digits of a number while the YAML events are read (the document is
never composed past a limit), the steps of gradient descent before any
per-step quantity is named. The same options exist on ``validate`` and
``report`` and in pytest (registered by oracle.pytest_entry).
A refusal names the limit, the value found and the option, e.g.
``… more than the limit of 10000 (raise it with --max-elements)``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Limits:
    """What a case file may contain. The defaults are far above any worked example of the notes."""

    max_file_mb: float = 2.0  # size of a case file in MB (10⁶ bytes), checked with stat before reading
    max_depth: int = 32  # lists and mappings inside each other (the bundled cases need at most 5)
    max_elements: int = 10_000  # entries of one list or mapping, and numbers in one array (a 100×100 W)
    max_total: int = 20_000  # values in one file (numbers, texts, lists, mappings; not keys): ~1 s to read
    max_steps: int = 10_000  # gradient_descent steps
    max_digits: int = 40  # digits in one number as written (float64 holds 17 significant ones)

    @property
    def max_bytes(self):
        return int(self.max_file_mb * 1_000_000)


DEFAULT = Limits()

OPTIONS = {  # field → (option, help)
    "max_file_mb": ("--max-file-mb", "Largest case file, in MB, read at all (default %(default)s)."),
    "max_depth": ("--max-depth", "Deepest nesting of lists and mappings in a case file (default %(default)s)."),
    "max_elements": (
        "--max-elements",
        "Most entries in one YAML list or mapping and numbers in one array (default %(default)s).",
    ),
    "max_total": (
        "--max-total",
        "Most values (numbers, texts, lists and mappings) in one case file (default %(default)s).",
    ),
    "max_steps": ("--max-steps", "Most gradient-descent steps of one case (default %(default)s)."),
    "max_digits": ("--max-digits", "Most digits in one number as written (default %(default)s)."),
}


def option(name):
    """'max_depth' → '--max-depth' (the option named in every refusal)."""
    return OPTIONS[name][0]


def hint(name, limits=None, unit=""):
    """'the limit is 32 (raise it with --max-depth)'."""
    value = getattr(limits or DEFAULT, name)
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return f"the limit is {shown}{unit} (raise it with {option(name)})"


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' * (kind is int)}number") from None
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{text!r}: a limit must be a positive finite number")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def add_options(add):
    """Register every limit with ``add`` (argparse's add_argument or pytest's addoption)."""
    for f in fields(Limits):
        name, text = OPTIONS[f.name]
        add(name, dest=f"limit_{f.name}", type=_positive(type(f.default)), default=f.default, metavar="N", help=text)


def from_options(get):
    """Limits from ``get(dest)`` (e.g. ``vars(args).get`` or pytest's ``config.getoption``)."""
    values = {}
    for f in fields(Limits):
        value = get(f"limit_{f.name}")
        if value is not None:
            values[f.name] = value
    return Limits(**values)


def from_args(args):
    """Limits of an argparse namespace (defaults for options the command does not have)."""
    return from_options(lambda dest: getattr(args, dest, None))
