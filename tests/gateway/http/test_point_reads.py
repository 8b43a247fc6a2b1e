"""GET by id and `userName eq` are coalesced point reads (eventstore/batching.py): concurrent
requests answered together must each get exactly their own answer, the same one the
general list query gives."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from tests.scim_client import Scim, entra_user


async def _create(scim: Scim, user_name: str, external_id: str) -> dict:
    response, body = await scim.post("/Users", entra_user(user_name, external_id))
    assert response.status == 201, body
    return body


async def test_concurrent_gets_each_get_their_own_user(bynder: Scim) -> None:
    users = [await _create(bynder, f"user{i}@example.com", f"ext{i}") for i in range(12)]
    missing = "0b0e8f0a-0000-4000-8000-000000000000"
    answers = await asyncio.gather(*(bynder.get(f"/Users/{u['id']}") for u in users),
                                   bynder.get(f"/Users/{missing}"), bynder.get("/Users/not-a-uuid"))
    for user, (response, body) in zip(users, answers, strict=False):
        assert response.status == 200
        assert (body["id"], body["userName"], body["meta"]["version"]) == (
            user["id"], user["userName"], user["meta"]["version"])
    assert [response.status for response, _ in answers[-2:]] == [404, 404]


async def test_a_user_of_another_tenant_is_not_found_even_read_together(bynder: Scim, rfc: Scim) -> None:
    mine = await _create(bynder, "mine@example.com", "m")
    theirs = await _create(rfc, "theirs@example.com", "t")
    (own, own_body), (other, _), (cross, _) = await asyncio.gather(
        bynder.get(f"/Users/{mine['id']}"), rfc.get(f"/Users/{theirs['id']}"), bynder.get(f"/Users/{theirs['id']}"))
    assert (own.status, own_body["userName"], other.status, cross.status) == (200, "mine@example.com", 200, 404)


def _filter(text: str, extra: str = "") -> str:
    return f"/Users?filter={quote(text)}{extra}"


async def test_user_name_eq_answers_as_the_general_query_does(bynder: Scim) -> None:
    user = await _create(bynder, "Ann.Smith@Example.com", "ann")
    await _create(bynder, "bob@example.com", "bob")
    # `and active eq true` takes the general query; alone, the point read.
    _, general = await bynder.get(_filter('userName eq "ANN.SMITH@example.com" and active eq true'))
    _, point = await bynder.get(_filter('userName eq "ANN.SMITH@example.com"'))
    assert point == general
    assert (point["totalResults"], point["Resources"][0]["id"]) == (1, user["id"])


async def test_user_name_eq_pages_like_any_list(bynder: Scim) -> None:
    await _create(bynder, "paged@example.com", "p")
    _, second_page = await bynder.get(_filter('userName eq "paged@example.com"', "&startIndex=2"))
    _, counted = await bynder.get(_filter('userName eq "paged@example.com"', "&count=0"))
    _, nobody = await bynder.get(_filter('userName eq "nobody@example.com"'))
    assert (second_page["totalResults"], second_page["itemsPerPage"], second_page.get("Resources", [])) == (1, 0, [])
    assert (counted["totalResults"], counted.get("Resources", [])) == (1, [])
    assert (nobody["totalResults"], nobody.get("Resources", [])) == (0, [])


async def test_user_name_eq_does_not_find_a_deleted_user(bynder: Scim) -> None:
    user = await _create(bynder, "gone@example.com", "g")
    response, _ = await bynder.delete(f"/Users/{user['id']}")
    assert response.status == 204
    _, found = await bynder.get(_filter('userName eq "gone@example.com"'))
    assert found["totalResults"] == 0


async def test_concurrent_user_name_filters_each_get_their_own_user(bynder: Scim) -> None:
    names = [f"filter{i}@example.com" for i in range(10)]
    for index, name in enumerate(names):
        await _create(bynder, name, f"f{index}")
    answers = await asyncio.gather(*(bynder.get(_filter(f'userName eq "{name.upper()}"')) for name in names))
    assert [body["Resources"][0]["userName"] for _, body in answers] == names
