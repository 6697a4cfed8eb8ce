"""Openings of sealed records, kept apart from the public records (issue 10 §2).

A sealed event's record carries only commitments to its sealed parts; the salt and value
of each part (the *opening*) is stored here, one row per record, and handed out only to
sealed readers after the project's bid opening.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.create_table(
        "sealed_openings",
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("project", sa.String(128), nullable=False),
        # Canonical JSON {path: {"salt", "value"}}.
        sa.Column("openings", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    # The openings are the only copy of the sealed values: never drop them silently.
    held = op.get_bind().scalar(sa.text("SELECT COUNT(*) FROM sealed_openings"))
    if held:
        raise RuntimeError(
            f"sealed_openings holds the openings of {held} sealed record(s), their only copy; "
            "refusing to drop it"
        )
    op.drop_table("sealed_openings")
