"""Errors a client can act on; pure, so domain code can raise them without knowing HTTP."""

from typing import Any

TYPE_BASE = "https://appointments.example/problems/"


class Problem(Exception):
    """An error a client can act on. ``code`` is stable; ``type`` is derived from it."""

    def __init__(self, status: int, code: str, title: str, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail or title)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.extensions = extensions
        self.headers: dict[str, str] = {}

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": TYPE_BASE + self.code, "title": self.title, "status": self.status, "code": self.code}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body


def not_found(what: str = "resource") -> Problem:
    return Problem(404, "not_found", "Not found", f"No such {what}.")


def try_again(detail: str, after_seconds: int = 1) -> Problem:
    """A 503 the client should simply retry (Retry-After says when)."""
    problem = Problem(503, "try_again", "Try again shortly", detail)
    problem.headers = {"Retry-After": str(after_seconds)}
    return problem


def rate_limited(retry_after: int, what: str) -> Problem:
    """429 ``rate_limited``; Retry-After says when the next attempt would be let through."""
    problem = Problem(429, "rate_limited", "Too many requests", f"Too many {what}; try again in {retry_after} s.")
    problem.headers = {"Retry-After": str(retry_after)}
    return problem
