"""capacity units and assignment audit

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 12:58:10.152388
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
    op.add_column("bookings", sa.Column("unit", sa.Integer(), nullable=True))
    # Bookings made before units existed get units 1, 2, ... per slot and professional.
    op.execute(
        """
        UPDATE bookings SET unit = numbered.n
        FROM (SELECT id, row_number() OVER (PARTITION BY event_id, slot_start, professional_id, status
                                            ORDER BY created_at, id) AS n FROM bookings) AS numbered
        WHERE bookings.id = numbered.id
        """
    )
    op.alter_column("bookings", "unit", nullable=False)
    op.create_check_constraint("bookings_unit_positive", "bookings", "unit >= 1")
    op.add_column(
        "bookings",
        sa.Column("assignment", postgresql.JSONB(astext_type=sa.Text()), nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    op.alter_column("bookings", "assignment", server_default=None)
    op.create_index(
        "bookings_one_per_unit",
        "bookings",
        ["event_id", "slot_start", "professional_id", "unit"],
        unique=True,
        postgresql_where=sa.text("status = 'confirmed'"),
    )


def downgrade() -> None:
    op.drop_index("bookings_one_per_unit", table_name="bookings", postgresql_where=sa.text("status = 'confirmed'"))
    op.drop_column("bookings", "assignment")
    op.drop_constraint("bookings_unit_positive", "bookings")
    op.drop_column("bookings", "unit")
