"""The README's settings table is the one the settings model makes (devhost/settings_table.py)."""

from __future__ import annotations

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings

from devhost.settings_table import README, render, rewrite, table_in
from shared.config import Settings

REGENERATE = "README.md's settings table is not what shared/config.py says: run `make settings-table`"


def test_readme_settings_table_is_the_one_the_settings_model_makes():
    assert table_in(README.read_text(encoding="utf-8")) == render(), REGENERATE


def test_every_setting_has_a_row_under_each_of_its_names():
    table = render()
    assert "`TRUSTED_PROXY_COUNT`" in table
    assert "`WEBSITE_INSTANCE_ID` / `INSTANCE_ID`" in table
    assert "`AzureWebJobsStorage__accountName`" in table
    assert table.count("\n") == 2 + len(Settings.model_fields)


class _Sample(BaseSettings):
    mode: bool = False
    """Turns | it on."""
    secret_refresh_seconds: int = Field(default=300, ge=30, le=3600)
    """How often."""
    timeout: float = Field(default=5.0, gt=0, le=60)
    """Waits at most this long."""


def test_a_row_shows_the_type_the_bounds_the_default_and_the_local_value(tmp_path):
    sample = tmp_path / "sample.json"
    sample.write_text('{"Values": {"secret_refresh_seconds": "60", "TIMEOUT": "x:<generate:key>"}}')
    rows = render(_Sample, sample).splitlines()[2:]
    assert rows == [
        "| `MODE` | Turns \\| it on. | `true` or `false` | `false` |  |",
        "| `SECRET_REFRESH_SECONDS` | How often. | whole number, 30-3600 | `300` | `60` |",
        "| `TIMEOUT` | Waits at most this long. | number over 0, up to 60 | `5` | `x:<random key>` |",
    ]


def test_a_setting_without_a_docstring_is_refused(tmp_path):
    class Undocumented(BaseSettings):
        quiet: bool = False

    sample = tmp_path / "sample.json"
    sample.write_text("{}")
    with pytest.raises(ValueError, match="quiet has no docstring"):
        render(Undocumented, sample)


def test_rewriting_replaces_only_what_lies_between_the_markers():
    readme = README.read_text(encoding="utf-8")
    stale = rewrite(readme, "| stale |\n")
    assert table_in(stale) == "| stale |\n"
    assert rewrite(stale, table_in(readme)) == readme
