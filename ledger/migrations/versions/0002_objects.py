"""Evidence storage: metadata of the objects held by the object store.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "objects",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("chunk_root", sa.LargeBinary(32), nullable=False),
        sa.Column("chunk_hashes", sa.LargeBinary, nullable=False),
        sa.Column("media_type", sa.String(255), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("legal_hold", sa.Boolean, nullable=False),
        sa.Column("retain_until", sa.String(40), nullable=False),
        sa.Column("backend", sa.String(16), nullable=False),
        sa.Column("version_id", sa.String(128), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("objects")
