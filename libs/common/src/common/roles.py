"""Who a caller is, in one place: tokens carry it, endpoints declare it, mails are written for it."""

from enum import StrEnum


class Role(StrEnum):
    CLIENT = "client"
    PROFESSIONAL = "professional"
    ADMIN = "admin"


PEOPLE = (Role.CLIENT, Role.PROFESSIONAL, Role.ADMIN)  # every signed-in person
