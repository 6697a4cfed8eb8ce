"""Object citations (which projects cite which evidence object) and poster key history.

Both are backfilled: citations from every committed record's ``attachments``, the key
history from the registered keys (valid from the start of the log, since when each was
registered in log terms was not kept before).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"

BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "object_citations",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("trade_type", sa.String(16), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
    )
    op.create_table(
        "poster_key_history",
        sa.Column("token_id", sa.String(32), primary_key=True),
        sa.Column("from_index", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("until_index", sa.BigInteger, nullable=True),
        sa.Column("public_key", sa.LargeBinary(32), nullable=False),
        sa.Column("required", sa.Boolean, nullable=False),
        sa.Column("registered_at", sa.String(40), nullable=False),
    )
    conn = op.get_bind()
    records = sa.table(
        "records", sa.column("idx", sa.BigInteger), sa.column("record", sa.LargeBinary)
    )
    citations = sa.table(
        "object_citations",
        sa.column("sha256", sa.String),
        sa.column("idx", sa.BigInteger),
        sa.column("project", sa.String),
        sa.column("trade_type", sa.String),
        sa.column("event_type", sa.String),
    )
    after = -1
    while True:
        rows = conn.execute(
            sa.select(records.c.idx, records.c.record)
            .where(records.c.idx > after)
            .order_by(records.c.idx)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        found = []
        for idx, raw in rows:
            rec = json.loads(bytes(raw))
            for sha in sorted({a["sha256"] for a in rec.get("attachments") or []}):
                found.append(
                    {
                        "sha256": sha,
                        "idx": idx,
                        "project": rec["project"],
                        "trade_type": rec["trade_type"],
                        "event_type": rec["type"],
                    }
                )
        if found:
            conn.execute(sa.insert(citations), found)
        after = rows[-1][0]
    conn.execute(
        sa.text(
            "INSERT INTO poster_key_history "
            "(token_id, from_index, until_index, public_key, required, registered_at) "
            "SELECT token_id, 0, NULL, public_key, required, created_at FROM poster_keys"
        )
    )


def downgrade() -> None:
    op.drop_table("poster_key_history")
    op.drop_table("object_citations")
