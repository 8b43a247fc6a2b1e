"""The OpenAPI description and the routes agree: every handler is described, every described
operation reaches a handler, and both SCIM base paths describe the same operations."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from gateway.app import create_app
from gateway.http.routes import BASE_PATHS
from gateway.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
SOURCE = ROOT / "gateway" / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "patch")


def description() -> dict:
    return yaml.safe_load(SOURCE.read_text())


def operations() -> list[tuple[str, str, dict]]:
    return [(method.upper(), path, operation) for path, item in description()["paths"].items()
            for method, operation in item.items() if method in METHODS]


def app() -> web.Application:
    return create_app(Settings(access_log=False, background_projector=False), "postgresql://unused")


async def handler_for(application: web.Application, method: str, path: str) -> str | None:
    concrete = re.sub(r"\{[^}]+\}", "x", path)
    match = await application.router.resolve(make_mocked_request(method, concrete, app=application))
    if match.http_exception is not None:
        return None
    return match.handler.__name__


def test_docs_openapi_is_the_served_file():
    assert (ROOT / "docs" / "openapi.yaml").resolve() == SOURCE.resolve()


async def test_every_described_operation_reaches_a_handler():
    application = app()
    missing = [(m, p) for m, p, _ in operations() if await handler_for(application, m, p) is None]
    assert missing == []


async def test_every_handler_is_described():
    application = app()
    described = {await handler_for(application, m, p) for m, p, _ in operations()}
    registered = {route.handler.__name__ for route in application.router.routes()}
    assert registered - described == set()


def test_both_base_paths_describe_the_same_operations():
    by_base = {base: {(m, p.removeprefix(base)): o for m, p, o in operations() if p.startswith(base + "/")}
               for base in BASE_PATHS}
    first, second = (by_base[base] for base in BASE_PATHS)
    assert first.keys() == second.keys() and len(first) == 20
    for key, operation in first.items():
        assert {k: v for k, v in operation.items() if k != "operationId"} == \
               {k: v for k, v in second[key].items() if k != "operationId"}, key


def test_operation_ids_are_unique_and_links_point_at_them():
    ids = [o["operationId"] for _, _, o in operations() if "operationId" in o]
    assert len(ids) == len(set(ids))
    for _, _, operation in operations():
        for response in operation["responses"].values():
            for link in response.get("links", {}).values():
                assert link["operationId"] in ids


def test_every_authenticated_operation_documents_its_errors():
    for method, path, operation in operations():
        codes = set(operation["responses"])
        if operation.get("security") == []:
            continue
        assert {"400", "401", "403", "429", "503"} <= codes, (method, path)
        assert "default" not in codes, (method, path)
        if method in ("PUT", "PATCH", "DELETE"):
            assert {"404", "409", "412"} <= codes, (method, path)
