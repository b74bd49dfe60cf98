"""Initial schema: resources, tags and metric points.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

The tables are spelled out here rather than taken from ``modelyard.store.schema`` so that this
revision keeps creating exactly this shape after the schema module moves on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text() -> sa.types.TypeEngine[str]:
    """Byte-wise comparison on PostgreSQL too, matching SQLite's default BINARY collation."""
    return sa.String().with_variant(sa.String(collation="C"), "postgresql")


def upgrade() -> None:
    """Create the three tables and their indexes."""
    op.create_table(
        "resources",
        sa.Column("kind", _text(), nullable=False),
        sa.Column("name", _text(), nullable=False),
        sa.Column("name_lower", _text(), nullable=False),
        sa.Column("arn", _text(), nullable=False),
        sa.Column("status", _text(), nullable=False),
        sa.Column("created", sa.Double(), nullable=False),
        sa.Column("modified", sa.Double(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "name", name="pk_resources"),
        sa.UniqueConstraint("arn", name="uq_resources_arn"),
    )
    op.create_index("ix_resources_kind_status", "resources", ["kind", "status"])
    op.create_index("ix_resources_kind_created", "resources", ["kind", "created"])
    op.create_index("ix_resources_kind_modified", "resources", ["kind", "modified"])
    op.create_table(
        "tags",
        sa.Column("arn", _text(), nullable=False),
        sa.Column("key", _text(), nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("arn", "key", name="pk_tags"),
        sa.ForeignKeyConstraint(
            ["arn"], ["resources.arn"], name="fk_tags_arn", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "metric_points",
        sa.Column("arn", _text(), nullable=False),
        sa.Column("name", _text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("timestamp", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("arn", "name", "seq", name="pk_metric_points"),
        sa.ForeignKeyConstraint(
            ["arn"], ["resources.arn"], name="fk_metric_points_arn", ondelete="CASCADE"
        ),
    )


def downgrade() -> None:
    """Drop everything this revision created."""
    op.drop_table("metric_points")
    op.drop_table("tags")
    op.drop_index("ix_resources_kind_modified", table_name="resources")
    op.drop_index("ix_resources_kind_created", table_name="resources")
    op.drop_index("ix_resources_kind_status", table_name="resources")
    op.drop_table("resources")
