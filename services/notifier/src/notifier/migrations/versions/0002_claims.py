"""claims

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 13:29:15.202297
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("sent_mail", sa.Column("status", sa.String(length=10), server_default="sent", nullable=False))
    op.add_column("sent_mail", sa.Column("claimed_by", sa.String(length=64), nullable=True))
    op.add_column(
        "sent_mail", sa.Column("claimed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)
    )
    # Rows already there were sent (status defaults to 'sent'); new rows are claims until sent.
    op.alter_column("sent_mail", "sent_at", existing_type=postgresql.TIMESTAMP(timezone=True), nullable=True, server_default=None)


def downgrade() -> None:
    op.alter_column(
        "sent_mail",
        "sent_at",
        existing_type=postgresql.TIMESTAMP(timezone=True),
        nullable=False,
        existing_server_default=sa.text("now()"),
    )
    op.drop_column("sent_mail", "claimed_at")
    op.drop_column("sent_mail", "claimed_by")
    op.drop_column("sent_mail", "status")
