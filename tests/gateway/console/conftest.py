"""A console client: signs in through the form and keeps the session cookie and CSRF token.

Cookies are sent by hand: the session cookie is ``Secure`` and the test server speaks plain
HTTP, so a client cookie jar would (rightly) keep it back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from gateway.console.sessions import COOKIE
from gateway.console.signin import SIGNIN_COOKIE

_NONCE = re.compile(r'name="nonce" value="([^"]+)"')
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


@dataclass
class Console:
    client: TestClient
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str = ""

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return {**({"Cookie": cookie} if cookie else {}), **(extra or {})}

    def _keep(self, response: ClientResponse) -> None:
        for name, morsel in response.cookies.items():
            if morsel.value:
                self.cookies[name] = morsel.value
            else:
                self.cookies.pop(name, None)

    async def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[ClientResponse, str]:
        response = await self.client.get(path, headers=self._headers(headers), allow_redirects=False)
        self._keep(response)
        text = await response.text()
        if (match := _CSRF.search(text)) is not None:
            self.csrf = match[1]
        return response, text

    async def post(self, path: str, data: dict | list | None = None, headers: dict[str, str] | None = None,
                   csrf: bool = True) -> tuple[ClientResponse, str]:
        form = list(data.items()) if isinstance(data, dict) else list(data or [])
        if csrf:
            form.append(("csrf", self.csrf))
        response = await self.client.post(path, data=form, headers=self._headers({**SAME_ORIGIN, **(headers or {})}),
                                          allow_redirects=False)
        self._keep(response)
        return response, await response.text()

    async def sign_in(self, token: str) -> ClientResponse:
        _, page = await self.get("/admin/signin")
        nonce = _NONCE.search(page)[1]
        response, _ = await self.post("/admin/signin", {"nonce": nonce, "token": token}, csrf=False)
        if response.status == 303:
            await self.get("/admin/users")  # picks up the CSRF token
        return response


@pytest.fixture
def console(client: TestClient) -> Console:
    return Console(client)


__all__ = ["COOKIE", "SIGNIN_COOKIE", "Console"]
