"""Links between records (lineage, trial membership) and the step of a metric point.

Revision ID: 0002
Revises: 0001
Create Date: 2025-06-01

Spelled out here rather than taken from ``modelyard.store.schema``, like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text() -> sa.types.TypeEngine[str]:
    """Byte-wise comparison on PostgreSQL too, matching SQLite's default BINARY collation."""
    return sa.String().with_variant(sa.String(collation="C"), "postgresql")


def upgrade() -> None:
    """Add ``metric_points.step`` and the ``links`` table with its reverse index."""
    # A nullable column without a default: SQLite adds it in place, no table rebuild needed.
    op.add_column("metric_points", sa.Column("step", sa.BigInteger(), nullable=True))
    op.create_table(
        "links",
        sa.Column("relation", _text(), nullable=False),
        sa.Column("source", _text(), nullable=False),
        sa.Column("destination", _text(), nullable=False),
        sa.Column("created", sa.Double(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("relation", "source", "destination", name="pk_links"),
        sa.ForeignKeyConstraint(
            ["source"], ["resources.arn"], name="fk_links_source", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["destination"], ["resources.arn"], name="fk_links_destination", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_links_relation_destination", "links", ["relation", "destination"])


def downgrade() -> None:
    """Drop what this revision added."""
    op.drop_index("ix_links_relation_destination", table_name="links")
    op.drop_table("links")
    with op.batch_alter_table("metric_points") as batch:
        batch.drop_column("step")
