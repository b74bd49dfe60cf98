"""The schema the migrations build is the schema ``modelyard.store.schema`` describes."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from modelyard.store import MetadataStore, SqlMetadataStore
from modelyard.store.schema import metadata


def test_migrated_database_matches_schema_module(store: MetadataStore) -> None:
    assert isinstance(store, SqlMetadataStore)
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
        tables = set(sa.inspect(conn).get_table_names())
    assert differences == []
    assert tables == {"alembic_version", "resources", "tags", "metric_points", "links"}


def test_tables_have_the_documented_keys_and_indexes(store: MetadataStore) -> None:
    assert isinstance(store, SqlMetadataStore)
    inspector = sa.inspect(store.engine)
    assert inspector.get_pk_constraint("resources")["constrained_columns"] == ["kind", "name"]
    assert inspector.get_pk_constraint("tags")["constrained_columns"] == ["arn", "key"]
    assert inspector.get_pk_constraint("metric_points")["constrained_columns"] == [
        "arn", "name", "seq",
    ]
    unique = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("resources")}
    assert ("arn",) in unique
    indexes = {tuple(i["column_names"]) for i in inspector.get_indexes("resources")}
    assert {("kind", "status"), ("kind", "created"), ("kind", "modified")} <= indexes
    for table in ("tags", "metric_points"):
        (foreign_key,) = inspector.get_foreign_keys(table)
        assert foreign_key["referred_table"] == "resources"
        assert foreign_key["referred_columns"] == ["arn"]
        assert foreign_key["options"].get("ondelete") == "CASCADE"
    assert inspector.get_pk_constraint("links")["constrained_columns"] == [
        "relation", "source", "destination",
    ]
    link_keys = inspector.get_foreign_keys("links")
    assert sorted(k["constrained_columns"][0] for k in link_keys) == ["destination", "source"]
    assert all(k["referred_table"] == "resources" and k["referred_columns"] == ["arn"]
               and k["options"].get("ondelete") == "CASCADE" for k in link_keys)
    assert ("relation", "destination") in {
        tuple(i["column_names"]) for i in inspector.get_indexes("links")
    }
