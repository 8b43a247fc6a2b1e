"""Operating surface: Prometheus metrics, forwarded headers behind a proxy, the OpenAPI file."""

from gateway.app import create_app
from gateway.http.keys import TENANCY
from gateway.settings import Settings
from tests.conftest import ACTOR
from tests.scim_client import Scim, entra_user


async def test_metrics_count_requests_events_and_pool(bynder: Scim):
    await bynder.post("/Users", entra_user())
    await bynder.get("/Users")
    response = await bynder.client.get("/metrics")
    text = await response.text()
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
    assert 'scim_gateway_requests_total{method="POST",route="create_user",status="201"} 1.0' in text
    assert 'scim_gateway_events_appended_total{type="UserCreated"} 1.0' in text
    assert "scim_gateway_request_duration_seconds_bucket" in text
    assert 'scim_gateway_db_pool_connections{state="max"}' in text
    assert 'scim_gateway_projection_lag_positions{projection="audit"}' in text


async def test_metrics_label_routes_by_name_across_base_paths_and_case(bynder: Scim):
    for path in ("/scim/v2/Users", "/api/2/scim/users", "/api/2/scim//Users"):
        response = await bynder.client.get(path, headers={"Authorization": f"Bearer {bynder.token}"})
        assert response.status == 200
    await bynder.client.get("/no/such/path", headers={"Authorization": f"Bearer {bynder.token}"})
    text = await (await bynder.client.get("/metrics")).text()
    assert 'scim_gateway_requests_total{method="GET",route="list_users",status="200"} 3.0' in text
    assert 'scim_gateway_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert "{_users}" not in text


async def test_metrics_have_build_and_process_series_and_no_created_series(client):
    text = await (await client.get("/metrics")).text()
    assert '\nscim_gateway_build_info{python="' in text and 'version="' in text
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds",
                 "process_start_time_seconds", "python_info", "python_gc_collections_total"):
        assert f"\n{name}" in text, name
    assert "_created" not in text


async def test_location_uses_forwarded_headers_only_when_trusted(aiohttp_client, database_url):
    for trusted, expected in ((True, "https://scim.acme.example/scim/v2/Users/"),
                              (False, "http://127.0.0.1:")):
        settings = Settings(access_log=False, background_projector=False, trust_forwarded_headers=trusted)
        client = await aiohttp_client(create_app(settings, database_url))
        tenancy = client.app[TENANCY]
        if not await tenancy.tenants():
            await tenancy.create_tenant("proxy", "rfc", ACTOR)
        _, token = await tenancy.create_token("proxy", "p@example.com", "t", ("scim:read", "scim:write"), ACTOR)
        response = await client.post("/scim/v2/Users", json={"userName": f"u-{trusted}"}, headers={
            "Authorization": f"Bearer {token}", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "scim.acme.example"})
        body = await response.json(content_type=None)
        assert body["meta"]["location"].startswith(expected)


async def test_openapi_is_served(client):
    response = await client.get("/openapi.yaml")
    assert response.status == 200 and (await response.text()).startswith("openapi: 3")
