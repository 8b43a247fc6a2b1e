from tests.scim_client import Scim, entra_user


async def test_healthz_needs_no_token(client):
    response = await client.get("/healthz")
    assert response.status == 200


async def test_readyz_reports_the_database_reachable(client):
    response = await client.get("/readyz")
    assert response.status == 200


async def test_create_then_get(bynder: Scim):
    response, body = await bynder.post("/Users", entra_user())
    assert response.status == 201, body
    response, fetched = await bynder.get(f"/Users/{body['id']}")
    assert response.status == 200
    assert fetched["userName"] == "ann.smith@example.com"
