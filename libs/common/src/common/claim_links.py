"""The single-use link a waitlist offer mail carries: the entry and the offer's expiry, signed with
a secret the booking service (which checks it) and the notifier (which writes it) share, so the
token never travels on the message bus and no one else can make one. Single use by the entry
itself: once claimed it is booked, and a second claim answers with that booking."""

import base64
import hashlib
import hmac
import struct
from datetime import UTC, datetime
from uuid import UUID

DEVELOPMENT_SECRET = "development-only-claim-link-secret"  # refused outside development (CLAIM_LINK_SECRET)


def claim_link(public_url: str, entry_id: UUID, expires_at: datetime, secret: str) -> str:
    """The booking page, opened on the offer: it claims with the token, no sign-in needed."""
    return f"{public_url.rstrip('/')}/?claim={entry_id}&token={claim_token(entry_id, expires_at, secret)}"


def claim_token(entry_id: UUID, expires_at: datetime, secret: str) -> str:
    body = entry_id.bytes + struct.pack(">q", int(expires_at.timestamp()))
    return _b64(body) + "." + _b64(_mac(body, secret))


def claimed_entry(token: str, secret: str, now: datetime) -> UUID | None:
    """The entry a token is for, if it is genuine and its offer has not expired; else None."""
    try:
        body_part, mac_part = token.split(".")
        body, mac = _unb64(body_part), _unb64(mac_part)
    except ValueError:
        return None
    if len(body) != 24 or not hmac.compare_digest(mac, _mac(body, secret)):
        return None
    (expires,) = struct.unpack(">q", body[16:])
    if datetime.fromtimestamp(expires, UTC) <= now:
        return None
    return UUID(bytes=body[:16])


def _mac(body: bytes, secret: str) -> bytes:
    return hmac.new(secret.encode(), b"waitlist-claim:" + body, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("not base64") from exc
