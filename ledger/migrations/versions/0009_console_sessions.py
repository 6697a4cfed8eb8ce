"""Web console sessions (issue 15): a signed-in token per session, its CSRF secret, expiry.

Sessions are kept server-side, by the SHA-256 of the id the cookie carries (a leaked
database gives no usable cookie), so signing out ends a session everywhere and every page
checks the token's revocation and expiry afresh.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("token_id", sa.String(32), nullable=False, index=True),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("expires_at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("console_sessions")
