"""professionals.sequence: the directory follows the gateway's professional.* events, newest kept

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # 0: known only from the professional's own token so far; any announcement is newer.
    op.add_column("professionals", sa.Column("sequence", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("professionals", "sequence")
