"""The public OpenAPI document: the gateway's own routes and the services' documents, merged."""

import asyncio
import time

from aiohttp import ClientSession, ClientTimeout

from common.endpoints import Endpoint
from common.errors import Problem
from common.openapi import document, merge


def unavailable(service: str) -> Problem:
    problem = Problem(
        503, "service_unavailable", "Service unavailable", f"The {service} service is not answering; try again shortly."
    )
    problem.headers = {"Retry-After": "2"}
    return problem


class PublicApi:
    def __init__(self, http: ClientSession, services: dict[str, str], own_endpoints: list[Endpoint], prefix: str) -> None:
        self._http = http
        self._services = services
        self._own = document("accounts", own_endpoints)  # the gateway's own: sign-in, profiles, professionals
        self._prefix = prefix
        self._cached: tuple[float, dict] | None = None

    async def _fetch(self, name: str, base_url: str) -> dict:
        try:
            async with self._http.get(f"{base_url}/openapi.json", timeout=ClientTimeout(total=5)) as response:
                response.raise_for_status()
                return await response.json()
        except Exception as exc:
            raise unavailable(name) from exc

    async def document(self) -> dict:
        if self._cached and time.monotonic() - self._cached[0] < 60:
            return self._cached[1]
        parts = await asyncio.gather(*(self._fetch(name, url) for name, url in self._services.items()))
        merged = merge("Appointments public API", [self._own, *parts], self._prefix)
        self._cached = (time.monotonic(), merged)
        return merged
