"""shift documents: the capacity record holds each shift as announced, so the counters rebuild from it

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 23:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Null for shifts applied before this revision: a shift's next change fills it in.
    op.add_column("shifts", sa.Column("doc", postgresql.JSONB(astext_type=sa.Text()), nullable=True))


def downgrade() -> None:
    op.drop_column("shifts", "doc")
