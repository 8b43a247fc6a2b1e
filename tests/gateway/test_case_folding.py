"""Issue 12 item 5: one case-folding rule for storage, uniqueness and filters.

``domain.identifiers.fold`` (NFKC case folding) is applied once, in Python; the
view stores folded keys and filters compare them with a folded parameter. Before, Python
lower-cased the stored value and PostgreSQL lower-cased the filter value, and the two
disagree on non-ASCII letters: an IdP matching on userName saw "not found", then "conflict".
"""

from __future__ import annotations

import unicodedata

import pytest

from domain.identifiers import fold
from gateway.http.keys import POOL, STORE
from projections.rebuild import verify
from projections.refold import refold_views
from tests.scim_client import Scim, entra_user


async def find(scim: Scim, filter_text: str, resource: str = "Users") -> list[str]:
    response = await scim.client.get(f"/scim/v2/{resource}", params={"filter": filter_text}, headers=scim.headers)
    body = await response.json(content_type=None)
    assert response.status == 200, body
    return [r["id"] for r in body["Resources"]]


def test_the_rule_itself():
    assert fold("İSTANBUL") == fold("i̇stanbul") == "i\u0307stanbul"
    assert fold("Straße") == fold("STRASSE") == "strasse"
    assert fold("ΟΔΟΣ") == fold("οδος") == fold("οδοσ")
    assert fold("\uff21\uff22\uff23") == "abc"  # full-width ABC
    assert fold(fold("ǅemal")) == fold("ǅemal")  # idempotent


def test_the_ascii_shortcut_agrees_with_the_full_rule():
    every_ascii = "".join(map(chr, range(128)))
    full = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", every_ascii).casefold())
    assert fold(every_ascii) == full == every_ascii.lower()


async def test_turkish_dotted_capital_i_is_found_and_unique_in_bynder(bynder: Scim):
    """The reported case: the IdP loops between "not found" and "conflict" forever."""
    response, user = await bynder.post("/Users", entra_user("İSTANBUL-x@X.EXAMPLE", "ist"))
    assert response.status == 201, user
    assert user["userName"] == fold("İSTANBUL-x@X.EXAMPLE")
    assert await find(bynder, 'userName eq "İSTANBUL-x@X.EXAMPLE"') == [user["id"]]
    assert await find(bynder, 'emails[type eq "work"].value eq "İSTANBUL-X@x.example"') == [user["id"]]
    assert await find(bynder, 'emails.value eq "i̇stanbul-x@x.example"') == [user["id"]]
    response, body = await bynder.post("/Users", entra_user("i̇stanbul-X@x.example", "ist-2"))
    assert response.status == 409 and body["scimType"] == "uniqueness"


async def test_german_sharp_s_keeps_its_case_and_folds_for_lookup_in_rfc(rfc: Scim):
    response, user = await rfc.post("/Users", {"userName": "Straße@Example.com",
                                                "name": {"familyName": "Weiß"}, "title": "Großhändler"})
    assert response.status == 201 and user["userName"] == "Straße@Example.com"  # rfc preserves case
    assert await find(rfc, 'userName eq "STRASSE@EXAMPLE.COM"') == [user["id"]]
    assert await find(rfc, 'userName sw "strasse"') == [user["id"]]
    assert await find(rfc, 'name.familyName eq "WEISS"') == [user["id"]]
    assert await find(rfc, 'title co "GROSS"') == [user["id"]]
    response, body = await rfc.post("/Users", {"userName": "strasse@example.com"})
    assert response.status == 409 and body["scimType"] == "uniqueness"


async def test_greek_final_sigma_matches_the_medial_one(rfc: Scim):
    response, user = await rfc.post("/Users", {"userName": "ΟΔΟΣ", "displayName": "Σοφός",
                                                "emails": [{"value": "ΟΔΟΣ@example.gr", "type": "home"}]})
    assert response.status == 201
    assert await find(rfc, 'userName eq "οδος"') == [user["id"]]
    assert await find(rfc, 'displayName eq "ΣΟΦΌΣ"') == [user["id"]]
    assert await find(rfc, 'emails[type eq "HOME" and value ew "Σ@EXAMPLE.GR"]') == [user["id"]]
    response, _ = await rfc.post("/Users", {"userName": "οδοσ"})
    assert response.status == 409


async def test_full_width_letters_are_their_ascii_selves(rfc: Scim):
    response, user = await rfc.post("/Users", {"userName": "\uff21\uff2e\uff2e@example.com", "externalId": "fw"})
    assert response.status == 201
    assert await find(rfc, 'userName eq "ann@example.com"') == [user["id"]]
    response, _ = await rfc.post("/Users", {"userName": "Ann@Example.com"})
    assert response.status == 409


async def test_patch_value_filters_use_the_same_rule(rfc: Scim):
    _, user = await rfc.post("/Users", {"userName": "patch-fold", "emails": [{"value": "İZMİR@x.example",
                                                                              "type": "work"}]})
    response, patched = await rfc.patch(f"/Users/{user['id']}", {"Operations": [
        {"op": "replace", "path": 'emails[value eq "i̇zmi̇r@X.EXAMPLE"].type', "value": "home"}]})
    assert response.status == 200 and patched["emails"] == [{"value": "İZMİR@x.example", "type": "home"}]


async def test_group_display_names_fold_the_same_way(rfc: Scim):
    _, group = await rfc.post("/Groups", {"displayName": "Straße Team"})
    assert await find(rfc, 'displayName eq "STRASSE TEAM"', "Groups") == [group["id"]]
    assert await find(rfc, 'displayName sw "straß"', "Groups") == [group["id"]]


async def test_refold_after_the_migration_rekeys_rows_stored_by_the_old_rule(rfc: Scim, database_url):
    _, first = await rfc.post("/Users", {"userName": "İSTANBUL@x.example"})
    _, group = await rfc.post("/Groups", {"displayName": "ΟΔΟΣ"})
    pool = rfc.client.app[POOL]
    # What the old rule (PostgreSQL lower()) left in the view.
    await pool.execute("UPDATE users_view SET user_name_lower = lower(user_name), attributes_folded = '{}'")
    await pool.execute("UPDATE groups_view SET display_name_folded = lower(display_name)")
    async with pool.acquire() as connection:
        await refold_views(connection)
    assert await pool.fetchval("SELECT user_name_lower FROM users_view WHERE id = $1::uuid",
                               first["id"]) == fold("İSTANBUL@x.example")
    assert await find(rfc, 'userName eq "i̇stanbul@X.EXAMPLE"') == [first["id"]]
    assert await find(rfc, 'displayName eq "οδος"', "Groups") == [group["id"]]
    assert await verify(database_url, rfc.client.app[STORE], "users_view") == []
    assert await verify(database_url, rfc.client.app[STORE], "groups") == []


@pytest.mark.parametrize("profile", ["rfc", "bynder"])
async def test_the_live_view_equals_a_rebuild_with_non_ascii_identifiers(token_for, database_url, profile):
    scim = await token_for(f"fold-{profile}", profile)
    for name in ("İSTANBUL@x.example", "Straße@x.example", "ΟΔΟΣ@x.example", "\uff21\uff22@x.example"):
        response, _ = await scim.post("/Users", entra_user(name, fold(name)))
        assert response.status == 201
    assert await verify(database_url, scim.client.app[STORE], "users_view") == []
