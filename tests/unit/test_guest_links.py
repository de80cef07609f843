"""Reading the resource id out of whatever a guest pastes."""

from __future__ import annotations

import pytest

from shared.resources.guest import resource_id_from_link

ID = "tFe_rgD-1VWgAi2lP3o6GQ"


@pytest.mark.parametrize(
    "pasted",
    [ID, f"  {ID} ", f"https://codes.example.com/r/{ID}", f"https://codes.example.com/r/{ID}/", f"/r/{ID}",
     f"r/{ID}", f"http://localhost:7071/r/{ID}?utm=mail#top"],
)  # fmt: skip
def test_the_id_is_found_in_a_link_or_alone(pasted):
    assert resource_id_from_link(pasted) == ID


@pytest.mark.parametrize(
    "pasted", [None, "", "hello", ID[:-1], f"https://codes.example.com/x/{ID}", f"/r/{ID}/extra", "x" * 5000]
)
def test_anything_else_has_no_id(pasted):
    assert resource_id_from_link(pasted) is None
