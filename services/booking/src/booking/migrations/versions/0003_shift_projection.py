"""shift projection

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 13:01:41.511805
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shifts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("professional_id", sa.Uuid(), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_shifts_event_id"), "shifts", ["event_id"], unique=False)
    op.create_index(op.f("ix_shifts_professional_id"), "shifts", ["professional_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_shifts_professional_id"), table_name="shifts")
    op.drop_index(op.f("ix_shifts_event_id"), table_name="shifts")
    op.drop_table("shifts")
