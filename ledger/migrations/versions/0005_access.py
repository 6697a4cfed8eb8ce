"""Access control: token scopes, and poster signing keys.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    with op.batch_alter_table("tokens") as t:
        # JSON lists; NULL means "all projects" / "all trade types".
        t.add_column(sa.Column("scope_projects", sa.Text, nullable=True))
        t.add_column(sa.Column("scope_trade_types", sa.Text, nullable=True))
    op.create_table(
        "poster_keys",
        sa.Column("token_id", sa.String(32), primary_key=True),
        sa.Column("public_key", sa.LargeBinary(32), nullable=False),
        sa.Column("required", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("poster_keys")
    with op.batch_alter_table("tokens") as t:
        t.drop_column("scope_trade_types")
        t.drop_column("scope_projects")
