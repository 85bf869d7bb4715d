"""Routes the public API to the service that owns each path. The services verify the token too."""

from aiohttp import ClientError, ClientTimeout, web

from common.logging import correlation_id
from common.web import CORRELATION_HEADER, HTTP
from gateway.adapters.services import unavailable

FORWARDED_REQUEST_HEADERS = ("Authorization", "Content-Type", "Accept", "Idempotency-Key")
FORWARDED_RESPONSE_HEADERS = ("Content-Type", "Retry-After", "Location")


def proxy_to(name: str, base_url: str, timeout: float):
    client_timeout = ClientTimeout(total=timeout)

    async def handler(request: web.Request) -> web.StreamResponse:
        path = request.rel_url.path.removeprefix("/api/v1")
        headers = {h: request.headers[h] for h in FORWARDED_REQUEST_HEADERS if h in request.headers}
        headers[CORRELATION_HEADER] = correlation_id.get() or ""  # the gateway's, minted if the client sent none
        body = await request.read() if request.can_read_body else None
        try:
            async with request.app[HTTP].request(
                request.method,
                base_url + path,
                params=request.rel_url.query,
                headers=headers,
                data=body,
                timeout=client_timeout,
                allow_redirects=False,
            ) as upstream:
                payload = await upstream.read()
                out_headers = {h: upstream.headers[h] for h in FORWARDED_RESPONSE_HEADERS if h in upstream.headers}
                return web.Response(status=upstream.status, body=payload, headers=out_headers)
        except (ClientError, TimeoutError) as exc:
            raise unavailable(name) from exc

    return handler
