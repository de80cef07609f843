"""Route templates as the Functions host (ASP.NET Core routing) reads them."""

import pytest

from devhost.http import parse_edge_rewrites
from devhost.routes import RouteTemplate, RouteTemplateError, join_route


def match(template: str, path: str):
    return RouteTemplate.parse(template).match(path)


def test_literal_routes_match_case_insensitively_and_ignore_one_trailing_slash():
    assert match("api/health", "/api/health") == {}
    assert match("api/health", "/API/Health/") == {}
    assert match("api/health", "/api/healthz") is None
    assert match("api/health", "/api") is None


def test_a_parameter_takes_one_whole_segment():
    assert match("api/users/{id}", "/api/users/42") == {"id": "42"}
    assert match("api/users/{id}", "/api/users/42/x") is None
    assert match("api/users/{id}", "/api/users") is None


def test_an_optional_parameter_may_be_left_out():
    assert match("hello/{name?}", "/hello") == {}
    assert match("hello/{name?}", "/hello/ada") == {"name": "ada"}


def test_a_catch_all_takes_the_rest_of_the_path():
    assert match("r/{*rest}", "/r/a/b/c.txt") == {"rest": "a/b/c.txt"}
    assert match("r/{**rest}", "/r/a") == {"rest": "a"}
    assert match("r/{*rest}", "/r") == {}


def test_several_parameters_can_share_a_segment():
    assert match("files/{name}.{ext}", "/files/report.final.pdf") == {"name": "report.final", "ext": "pdf"}


@pytest.mark.parametrize(
    ("template", "good", "bad"),
    [
        ("{id:int}", "-12", "1.5"),
        ("{id:int}", "2147483647", "2147483648"),
        ("{id:long}", "2147483648", "x"),
        ("{name:alpha}", "Ada", "ada1"),
        ("{id:guid}", "1B4E28BA-2FA1-11D2-883F-0016D3CCA427", "1b4e28ba-2fa1-11d2-883f"),
        ("{flag:bool}", "True", "yes"),
        ("{n:int:min(1)}", "1", "0"),
        ("{n:max(10)}", "10", "11"),
        ("{n:range(1,5)}", "5", "6"),
        ("{s:length(2,3)}", "abc", "abcd"),
        ("{s:minlength(2)}", "ab", "a"),
        ("{s:maxlength(2)}", "ab", "abc"),
        ("{code:regex(^\\d{{6}}$)}", "123456", "12345"),
        ("{v:regex(^(a|b):[0-9]+$)}", "a:12", "c:12"),
    ],
)
def test_constraints_accept_and_refuse(template, good, bad):
    route = RouteTemplate.parse("x/" + template)
    assert route.match("/x/" + good) is not None
    assert route.match("/x/" + bad) is None


def test_escaped_braces_are_literal_characters():
    assert match("a/{{literal}}", "/a/{literal}") == {}


@pytest.mark.parametrize(
    "template",
    ["a/{id:nosuch}", "a/{id", "a/id}", "a/{id?}/b", "a/{*rest}/b", "{id}/{id}", "a//b", "a/{n:min(x)}", "a/{n=1}"],
)
def test_templates_the_host_would_reject_are_refused(template):
    with pytest.raises(RouteTemplateError, match="route"):
        RouteTemplate.parse(template)


def test_precedence_puts_literals_before_constrained_before_plain_before_catch_all():
    templates = ["items/{*rest}", "items/{name}", "items/{id:int}", "items/new", "items/{name?}"]
    ordered = sorted((RouteTemplate.parse(t) for t in templates), key=lambda r: r.precedence)
    assert [r.template for r in ordered] == [
        "items/new",
        "items/{id:int}",
        "items/{name}",
        "items/{name?}",
        "items/{*rest}",
    ]


def test_shape_ignores_parameter_names_but_keeps_constraints():
    assert RouteTemplate.parse("a/{id}").shape == RouteTemplate.parse("A/{other}").shape
    assert RouteTemplate.parse("a/{id:int}").shape != RouteTemplate.parse("a/{name:alpha}").shape


def test_the_route_prefix_goes_in_front():
    assert join_route("", "api/health") == "api/health"
    assert join_route("api", "/health/") == "api/health"
    assert join_route("api", "") == "api"


def test_edge_rewrites_are_read_as_public_and_origin_prefixes_and_a_bad_one_is_named():
    assert parse_edge_rewrites("/admin=/console/, /a=/b") == (("/admin", "/console"), ("/a", "/b"))
    with pytest.raises(ValueError, match="'admin=console' is not '/public=/origin'"):
        parse_edge_rewrites("admin=console")
