"""The route table and the handlers agree: every route has a handler, every handler a route."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from datasets_core.http import Api, powertools_path
from routes import BACKGROUND_FUNCTIONS, ROUTES

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


def handler_folders() -> set[str]:
    return {path.parent.name for path in FUNCTIONS.glob("*/handler.py")}


def test_every_route_has_a_handler_module() -> None:
    missing = set(ROUTES) - handler_folders()
    assert not missing, f"routes without functions/<name>/handler.py: {sorted(missing)}"


def test_every_http_handler_has_a_route() -> None:
    orphans = handler_folders() - set(ROUTES) - set(BACKGROUND_FUNCTIONS)
    assert not orphans, f"handlers missing from routes.py: {sorted(orphans)}"


@pytest.mark.parametrize("function", sorted(ROUTES))
def test_handler_serves_exactly_its_route(function: str) -> None:
    module = importlib.import_module(f"{function}.handler")
    assert callable(module.handler)
    api = module.api
    assert isinstance(api, Api)
    route = ROUTES[function]
    assert api.route_spec is route
    # Router keys are (rule, methods, ...): one rule, one method per endpoint function.
    registered = {(key[0], tuple(key[1])) for key in api.router._routes}
    assert registered == {(powertools_path(route.path), (route.method,))}


def test_route_table_has_no_duplicate_method_and_path() -> None:
    pairs = [(route.method, route.path) for route in ROUTES.values()]
    assert len(pairs) == len(set(pairs))


def test_every_authenticated_route_names_a_known_scope() -> None:
    from datasets_core.auth import SCOPES

    for route in ROUTES.values():
        assert route.scope is None or route.scope in SCOPES, route
