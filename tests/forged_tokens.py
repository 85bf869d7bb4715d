"""Tokens an attacker would try (issue 14), built against a real signing key so that each differs
from a good token in one way only. Used against the verifier itself and against the running system."""

import base64
import hashlib
import hmac
import json
import time

import jwt
from cryptography.hazmat.primitives import serialization

from common.auth import TokenSigner, new_private_key_pem, private_key, public_pem


def _part(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def hs256(body: dict, secret: bytes, kid: str) -> str:
    """The algorithm-confusion attack, made by hand (PyJWT itself refuses to key HMAC with a public key)."""
    unsigned = _part({"alg": "HS256", "typ": "JWT", "kid": kid}) + "." + _part(body)
    signature = hmac.new(secret, unsigned.encode(), hashlib.sha256).digest()
    return unsigned + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


def forged_tokens(signing_key: str, issuer: str, audience: str, subject: str, role: str = "admin") -> dict[str, str]:
    """Every way a token for ``subject`` (as ``role``) can be wrong, by name: none may be accepted."""
    now = int(time.time())
    kid = TokenSigner(signing_key, issuer, audience, 60).jwks()["keys"][0]["kid"]
    stranger = new_private_key_pem()  # a key nobody publishes: a made-up one, or one retired since

    def claims(**changes) -> dict:
        base = {"sub": subject, "role": role, "name": "Mallory", "iss": issuer, "aud": audience, "iat": now, "exp": now + 600}
        return {k: v for k, v in (base | changes).items() if v is not None}

    def signed(body: dict, key: str = signing_key, **header) -> str:
        return jwt.encode(body, private_key(key), algorithm="EdDSA", headers={"kid": kid} | header)

    public_raw = private_key(signing_key).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    head, body, signature = signed(claims()).split(".")
    return {
        "alg none": jwt.encode(claims(), None, algorithm="none", headers={"kid": kid}),
        "HS256 keyed with the public key": hs256(claims(), public_raw, kid),
        "HS256 keyed with the public key's PEM": hs256(claims(), public_pem(private_key(signing_key)).encode(), kid),
        "expired": signed(claims(exp=now - 5)),
        "not yet valid (nbf)": signed(claims(nbf=now + 600)),
        "another issuer": signed(claims(iss="someone-else")),
        "another audience": signed(claims(aud="another-product")),
        "no exp": signed(claims(exp=None)),
        "no sub": signed(claims(sub=None)),
        "no iss": signed(claims(iss=None)),
        "no aud": signed(claims(aud=None)),
        "no kid": jwt.encode(claims(), private_key(signing_key), algorithm="EdDSA"),
        "a bad signature": f"{head}.{body}." + base64.urlsafe_b64encode(b"x" * 64).rstrip(b"=").decode(),
        "a changed body": f"{head}.{_part(claims(role='admin', sub=subject, name='Admin'))}.{signature}",
        "a retired or unknown key": jwt.encode(claims(), private_key(stranger), algorithm="EdDSA"),
        "a stranger's key under the gateway's kid": signed(claims(), stranger),
        "a gateway token claiming a service": signed(claims(role="service", name="availability")),
        "junk": "x.y.z",
    }
