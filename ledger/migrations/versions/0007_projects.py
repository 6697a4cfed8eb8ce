"""Projects: each project's trade type, fixed by its first record (issue 10 §1).

Scope checks read the trade type from here, never from a request or a page of records,
and the sequencer refuses every later event of another trade type. The table is filled
from the first record (seq 0) of every process chain; access chains (``<project>~access``)
belong to their project and get no row.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"

BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("project", sa.String(128), primary_key=True),
        sa.Column("trade_type", sa.String(16), nullable=False),
        sa.Column("first_index", sa.BigInteger, nullable=False),
    )
    conn = op.get_bind()
    records = sa.table(
        "records",
        sa.column("idx", sa.BigInteger),
        sa.column("project", sa.String),
        sa.column("seq", sa.BigInteger),
        sa.column("record", sa.LargeBinary),
    )
    projects = sa.table(
        "projects",
        sa.column("project", sa.String),
        sa.column("trade_type", sa.String),
        sa.column("first_index", sa.BigInteger),
    )
    after = -1
    while True:
        rows = conn.execute(
            sa.select(records.c.idx, records.c.project, records.c.record)
            .where(records.c.seq == 0, records.c.idx > after)
            .order_by(records.c.idx)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        found = [
            {
                "project": project,
                "trade_type": json.loads(bytes(raw))["trade_type"],
                "first_index": idx,
            }
            for idx, project, raw in rows
            if "~" not in project
        ]
        if found:
            conn.execute(sa.insert(projects), found)
        after = rows[-1][0]


def downgrade() -> None:
    op.drop_table("projects")
