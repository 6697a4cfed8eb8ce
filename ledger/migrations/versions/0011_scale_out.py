"""Scale-out (issue 16): the high-water mark and the authorization epoch in the database.

``log_high_water`` holds one row: the newest checkpoint any node signed. The sequencer
moves it by compare-and-swap in the checkpoint's own transaction, so two nodes on one
database (each with its own data directory) can never both sign a tree of one size.
``auth_epoch`` holds one counter, bumped in the transaction of every token revocation and
poster-key change; each request reads it, so a change on one node applies on every node at
once.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"

#: SHA-256 of the empty string: the root of the empty tree (RFC 6962 §2.1).
_EMPTY_ROOT = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


def upgrade() -> None:
    op.create_table(
        "log_high_water",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("root", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "auth_epoch",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    conn = op.get_bind()
    head = conn.execute(
        sa.text("SELECT size, root FROM checkpoints ORDER BY size DESC LIMIT 1")
    ).first()
    size, root = (int(head[0]), bytes(head[1])) if head else (0, _EMPTY_ROOT)
    conn.execute(
        sa.text("INSERT INTO log_high_water (id, size, root) VALUES (1, :s, :r)"),
        {"s": size, "r": root},
    )
    conn.execute(sa.text("INSERT INTO auth_epoch (id, version) VALUES (1, 0)"))


def downgrade() -> None:
    op.drop_table("auth_epoch")
    op.drop_table("log_high_water")
