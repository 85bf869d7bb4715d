"""events: the booking rules (minimum notice, horizon, a professional's daily maximum) and the
timings of waitlist offers and reminders

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("events", sa.Column("min_notice_minutes", sa.Integer(), nullable=True))
    op.add_column("events", sa.Column("horizon_days", sa.Integer(), nullable=True))
    op.add_column("events", sa.Column("max_per_professional_per_day", sa.Integer(), nullable=True))
    op.add_column("events", sa.Column("waitlist_offer_minutes", sa.Integer(), server_default="15", nullable=False))
    op.add_column("events", sa.Column("reminder_hours", sa.Integer(), server_default="24", nullable=False))


def downgrade() -> None:
    rules = ("reminder_hours", "waitlist_offer_minutes", "max_per_professional_per_day", "horizon_days", "min_notice_minutes")
    for column in rules:
        op.drop_column("events", column)
