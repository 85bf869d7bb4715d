"""A small client of the public API (through the gateway), for the demo seed and the tests."""

from typing import Any

import aiohttp


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


class ApiClient:
    def __init__(self, http: aiohttp.ClientSession, base_url: str, token: str | None = None) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/") + "/api/v1"
        self.token = token

    def as_user(self, token: str) -> "ApiClient":
        return ApiClient(self.http, self.base_url.removesuffix("/api/v1"), token)

    async def request(
        self, method: str, path: str, *, json: Any = None, params: dict | None = None, headers: dict | None = None
    ) -> tuple[int, Any]:
        all_headers = dict(headers or {})
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        async with self.http.request(method, self.base_url + path, json=json, params=params, headers=all_headers) as response:
            if response.content_length == 0:
                return response.status, None
            if response.content_type.endswith("json"):  # application/json, application/problem+json
                return response.status, await response.json()
            return response.status, await response.text()  # a calendar, a stream's start

    async def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        status, body = await self.request(method, path, **kwargs)
        if status != expect:
            raise ApiError(status, body)
        return body

    async def sign_in(self, email: str, password: str) -> "ApiClient":
        body = await self.call("POST", "/auth/login", json={"email": email, "password": password})
        return self.as_user(body["access_token"])
