import pytest

from shared import errors
from shared.resources.downloads import content_disposition
from shared.resources.store import name_key, validate_content_type, validate_name


@pytest.mark.parametrize("name", ["report.pdf", "Ünïcødé file (1).txt", "a" * 200, "x"])
def test_ordinary_file_names_are_accepted(name):
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "a" * 201, "../etc/passwd", "a/b", "a\\b", "a\x00b", "tab\tname", ".", "..", " lead", "q?x", "h#x"]
)
def test_path_separators_control_characters_and_odd_names_are_refused(name):
    with pytest.raises(errors.InvalidInput):
        validate_name(name)


def test_a_name_key_is_a_valid_table_key_for_any_accepted_name():
    key = name_key("Ünïcødé file (1).txt")
    assert all(ch.isalnum() or ch in "-_" for ch in key)


def test_the_content_type_is_kept_without_parameters_and_defaults_to_octet_stream():
    assert validate_content_type("text/plain; charset=utf-8") == "text/plain"
    assert validate_content_type(None) == "application/octet-stream"
    with pytest.raises(errors.InvalidInput):
        validate_content_type("not a type")


def test_the_download_names_the_file_even_when_it_is_not_ascii():
    value = content_disposition('résumé "final".pdf')
    assert value.startswith('attachment; filename="r?sum? _final_.pdf"')
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf" in value
