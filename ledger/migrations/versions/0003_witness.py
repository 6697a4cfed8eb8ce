"""Witnessing and trusted time: witness cosignatures and RFC 3161 tokens per checkpoint.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "cosignatures",
        sa.Column(
            "size",
            sa.BigInteger,
            sa.ForeignKey("checkpoints.size"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("witness", sa.String(255), primary_key=True),
        sa.Column("key_id", sa.LargeBinary(4), primary_key=True),
        sa.Column("signature", sa.LargeBinary, nullable=False),
        sa.Column("cosigned_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "checkpoint_timestamps",
        sa.Column(
            "size",
            sa.BigInteger,
            sa.ForeignKey("checkpoints.size"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("reply", sa.LargeBinary, nullable=False),
        sa.Column("gen_time", sa.String(40), nullable=False),
        sa.Column("tsa", sa.String(255), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("checkpoint_timestamps")
    op.drop_table("cosignatures")
