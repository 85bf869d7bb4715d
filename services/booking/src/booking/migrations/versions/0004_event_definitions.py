"""event definitions: the capacity record holds the events' hours and blackouts too

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_definitions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("doc", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("shifts_of_professional", "shifts", ["event_id", "professional_id", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("shifts_of_professional", table_name="shifts")
    op.drop_table("event_definitions")
