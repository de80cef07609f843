"""The app's function index: every blueprint registers, names and routes are unique, and
the local host can serve every route. (Building the blueprints reads the app settings.)"""

import importlib
from pathlib import Path

import azure.functions as func
import pytest

from devhost.index import read_index
from devhost.settings import HostConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(blueprints) -> func.FunctionApp:
    """A fresh app wired like function_app.py (an app's index can be read only once)."""
    import function_app

    app = func.FunctionApp(http_auth_level=function_app.app.auth_level)
    for blueprint in blueprints:
        app.register_functions(blueprint)
    return app


@pytest.fixture
def blueprints(settings) -> list[func.Blueprint]:
    from functions import blueprints

    return blueprints()


def functions_of(blueprint: func.Blueprint) -> list:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    app.register_functions(blueprint)
    return app.get_functions()


def test_every_blueprint_registers_its_functions_in_the_app(blueprints):
    import function_app

    # reloaded: an app's index can be read only once, and the worker reads it first
    registered = {f.get_function_name() for f in importlib.reload(function_app).app.get_functions()}
    for blueprint in blueprints:
        names = [f.get_function_name() for f in functions_of(blueprint)]
        assert names, f"a blueprint registers no function: {blueprint}"
        assert set(names) <= registered


def test_function_names_are_unique(blueprints):
    names = [f.get_function_name().lower() for bp in blueprints for f in functions_of(bp)]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_no_two_functions_answer_the_same_route_and_method(app):
    # read_index also refuses templates the local host (and the Functions host) cannot serve
    index = read_index(app, HostConfig.load(ROOT / "host.json").route_prefix)
    pairs = [(f.route.shape, method) for f in index.http for method in f.methods]
    assert len(pairs) == len(set(pairs))
    assert any(f.route.template == "api/health" for f in index.http)
