"""What the calendars people keep see of a booking, the same wherever it comes from (the mails'
invites, the calendar feeds)."""

from uuid import UUID


def booking_uid(booking_id: UUID, domain: str) -> str:
    """A booking's iCalendar UID: one per booking, so a calendar updates one entry whether it learns
    of a change from a mail or from a feed. ``domain``: ``ServiceSettings.mail_domain``."""
    return f"{booking_id}@{domain}"
