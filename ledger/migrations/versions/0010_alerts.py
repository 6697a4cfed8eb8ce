"""Live alerts (issue 17): webhook subscriptions with their persistent delivery cursor, and
the detection worker's cursor over the log.

An alert itself is a record (``alert_raised`` in the supervision chain), so the queue of a
subscription is the chain after its ``delivered_seq``: nothing is lost while a receiver
is down, and a restart resumes where delivery stopped.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.create_table(
        "alert_subscriptions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("token_id", sa.String(32), nullable=False, index=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("delivered_seq", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.Float, nullable=False),
    )
    op.create_table(
        "alert_state",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("alert_state")
    op.drop_table("alert_subscriptions")
