"""The README's settings table, made from the settings model (`shared/config.py`).

    python -m devhost.settings_table     rewrite the table in README.md (make settings-table)

One row per field of `Settings`: the environment variable(s) it is read from, its
docstring, the values it accepts (from its type and constraints), its default, and the
value `local.settings.sample.json` gives it. The table sits between two HTML comments in
the README; tests/unit/test_settings_table.py fails when it differs from this rendering.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import sys
import textwrap
import types
from itertools import pairwise
from pathlib import Path
from typing import Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, MaxLen
from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from shared.config import RateSpec, Settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SAMPLE = ROOT / "local.settings.sample.json"
START = "<!-- settings table: made from shared/config.py by `make settings-table`; edit the model, not the table -->"
END = "<!-- end of the settings table -->"
HEADER = (
    "| setting | what it does | accepted | default | local (`local.settings.sample.json`) |\n|---|---|---|---|---|\n"
)
RATE_PATTERN = get_args(RateSpec)[1].pattern
PLACEHOLDERS = {"<generate:key>": "<random key>", "<generate:password>": "<random password>"}


def env_names(name: str, field: FieldInfo) -> list[str]:
    """The environment variables a field is read from, in priority order."""
    alias = field.validation_alias
    if alias is None:
        return [name.upper()]
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasChoices) and all(isinstance(choice, str) for choice in alias.choices):
        return list(alias.choices)
    raise TypeError(f"{name}: an alias the table cannot show ({alias!r})")


def _code(value: object) -> str:
    return f"`{value}`"


def _either(values: list[str]) -> str:
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " or " + values[-1]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def accepted(field: FieldInfo) -> str:
    """What a field accepts, in words, from its type and constraints."""
    kind = field.annotation
    if get_origin(kind) in (Union, types.UnionType):
        kind = next(arg for arg in get_args(kind) if arg is not type(None))
    if get_origin(kind) is Literal:
        return _either([_code(value) for value in get_args(kind)])
    if kind is bool:
        return "`true` or `false`"
    bounds = {type(item): item for item in field.metadata}
    if kind in (int, float):
        noun = "whole number" if kind is int else "number"
        if Ge in bounds and Le in bounds:
            return f"{noun}, {_number(bounds[Ge].ge)}-{_number(bounds[Le].le)}"
        if Gt in bounds and Le in bounds:
            return f"{noun} over {_number(bounds[Gt].gt)}, up to {_number(bounds[Le].le)}"
        return noun
    pattern = next((getattr(item, "pattern", None) for item in field.metadata if getattr(item, "pattern", None)), None)
    if pattern == RATE_PATTERN:
        return "a rate"
    if pattern:
        return f"text matching `{pattern}`"
    if MaxLen in bounds:
        return f"text, at most {bounds[MaxLen].max_length} characters"
    return "secret text" if kind is SecretStr else "text"


def default(field: FieldInfo) -> str:
    value = field.default
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return _code(str(value).lower())
    if isinstance(value, int | float):
        return _code(_number(value))
    return _code(value)


def local_value(names: list[str], sample: dict[str, str]) -> str:
    wanted = {name.lower() for name in names}
    value = next((value for key, value in sample.items() if key.lower() in wanted), None)
    if value is None:
        return ""
    for placeholder, shown in PLACEHOLDERS.items():
        value = value.replace(placeholder, shown)
    return _code(value)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def field_docstrings(model: type) -> dict[str, str]:
    """The string right under each annotated field in the class's source. Read here, not
    by pydantic (`use_attribute_docstrings`), which would parse the source at every import
    of the settings, on every cold start."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(model)))
    body = tree.body[0].body
    found = {}
    for statement, following in pairwise(body):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            found[statement.target.id] = inspect.cleandoc(following.value.value)
    return found


def render(model: type[Settings] = Settings, sample_path: Path = SAMPLE) -> str:
    """The table, header included, one row per field in the model's order."""
    sample = json.loads(sample_path.read_text(encoding="utf-8")).get("Values") or {}
    docstrings = field_docstrings(model)
    rows = []
    for name, field in model.model_fields.items():
        if name not in docstrings:
            raise ValueError(f"{name} has no docstring: say in shared/config.py what the setting does")
        names = env_names(name, field)
        cells = (
            " / ".join(_code(n) for n in names),
            docstrings[name],
            accepted(field),
            default(field),
            local_value(names, sample),
        )
        rows.append("| " + " | ".join(_cell(cell) for cell in cells) + " |\n")
    return HEADER + "".join(rows)


def table_in(readme: str) -> str:
    """The README's table: what lies between the two markers."""
    match = re.search(re.escape(START) + r"\n(.*?)" + re.escape(END), readme, flags=re.DOTALL)
    if match is None:
        raise ValueError(f"README.md lacks the settings table's markers ({START} ... {END})")
    return match.group(1)


def rewrite(readme: str, table: str) -> str:
    table_in(readme)  # both markers present
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}{END}{tail}"


def main() -> int:
    text = README.read_text(encoding="utf-8")
    updated = rewrite(text, render())
    if updated != text:
        README.write_text(updated, encoding="utf-8")
        print("README.md: settings table rewritten")
    else:
        print("README.md: settings table already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
