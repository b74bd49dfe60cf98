"""The tables of the SQL metadata store, as SQLAlchemy Core metadata.

This module describes the *current* shape of the schema. Migrations under ``migrations/versions``
create and change it; they spell their tables out on their own (a migration must keep doing what
it did when it was written, whatever this module later becomes). ``tests/store`` checks that a
database migrated to head matches this metadata.

Names and statuses are compared byte-wise on every backend: on PostgreSQL they use the ``"C"``
collation, because the database's default locale collation would sort ``"a" < "B"`` where SQLite
sorts ``"B" < "a"``, and a list must page the same way on both.
"""

from __future__ import annotations

import sqlalchemy as sa

# Named constraints let later migrations drop or alter them by name on every dialect.
metadata = sa.MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
    }
)


def _text() -> sa.types.TypeEngine[str]:
    """A string compared byte-wise on every dialect (see the module docstring)."""
    return sa.String().with_variant(sa.String(collation="C"), "postgresql")


resources = sa.Table(
    "resources",
    metadata,
    sa.Column("kind", _text(), primary_key=True),
    sa.Column("name", _text(), primary_key=True),
    # Lower-cased in Python on write (and the pattern on read), so that NameContains folds case
    # the same way on every backend instead of depending on the database's lower().
    sa.Column("name_lower", _text(), nullable=False),
    sa.Column("arn", _text(), nullable=False),
    sa.Column("status", _text(), nullable=False),
    sa.Column("created", sa.Double, nullable=False),
    sa.Column("modified", sa.Double, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("state", sa.JSON, nullable=False),
    sa.UniqueConstraint("arn"),
    sa.Index(None, "kind", "status"),
    sa.Index(None, "kind", "created"),
    sa.Index(None, "kind", "modified"),
)
"""One row per resource record, addressed by ``(kind, name)``."""

tags = sa.Table(
    "tags",
    metadata,
    sa.Column(
        "arn",
        _text(),
        sa.ForeignKey("resources.arn", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", _text(), primary_key=True),
    sa.Column("value", sa.String(), nullable=False),
)
"""Tags by ARN; deleted with their resource (the foreign key cascades)."""

metric_points = sa.Table(
    "metric_points",
    metadata,
    sa.Column(
        "arn",
        _text(),
        sa.ForeignKey("resources.arn", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("name", _text(), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    # Nullable because SQLite stores NaN as NULL; the store maps NULL back to NaN on read so a
    # diverged loss reads the same on every backend.
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("timestamp", sa.Double, nullable=False),
    # The writer's iteration number, when it gave one (sagemaker-metrics' Step).
    sa.Column("step", sa.BigInteger, nullable=True),
)
"""Observed metric values by ARN; ``seq`` orders the points of one metric and dedupes them."""

links = sa.Table(
    "links",
    metadata,
    sa.Column("relation", _text(), primary_key=True),
    sa.Column(
        "source", _text(), sa.ForeignKey("resources.arn", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "destination",
        _text(),
        sa.ForeignKey("resources.arn", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("created", sa.Double, nullable=False),
    sa.Column("attributes", sa.JSON, nullable=False),
    # Walking a graph backwards (who points at this ARN?) must not scan the table.
    sa.Index(None, "relation", "destination"),
)
"""Directed edges between records (lineage associations, trial membership); deleted with
either end (both foreign keys cascade)."""
