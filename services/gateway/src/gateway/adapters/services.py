"""Calls from the gateway to the services behind it."""

from aiohttp import ClientError, ClientSession, ClientTimeout

from common.auth import Identity, Role, TokenCodec
from common.errors import Problem

GATEWAY_IDENTITY_ID = "00000000-0000-0000-0000-000000000001"


def unavailable(service: str) -> Problem:
    problem = Problem(
        503, "service_unavailable", "Service unavailable", f"The {service} service is not answering; try again shortly."
    )
    problem.headers = {"Retry-After": "2"}
    return problem


class ShiftsDirectory:
    """Tells the shifts service who the professionals are, so shift events can name them."""

    def __init__(self, http: ClientSession, base_url: str, tokens: TokenCodec, timeout: float) -> None:
        self._http = http
        self._base_url = base_url
        self._timeout = ClientTimeout(total=timeout)
        self._token = tokens.issue(Identity(id=GATEWAY_IDENTITY_ID, role=Role.SERVICE, name="gateway"))

    async def upsert_professional(self, professional: Identity) -> None:
        body = {"name": professional.name, "email": professional.email, "timezone": professional.timezone}
        try:
            async with self._http.put(
                f"{self._base_url}/internal/professionals/{professional.id}",
                json=body,
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=self._timeout,
            ) as response:
                if response.status != 204:
                    raise unavailable("shifts")
        except (ClientError, TimeoutError) as exc:
            raise unavailable("shifts") from exc
