"""The List* operations' common request fields, turned into a store query and a page.

Every List* call of SageMaker takes the same family of filters (NameContains, StatusEquals,
CreationTimeAfter/Before, LastModifiedTimeAfter/Before), SortBy/SortOrder and
MaxResults/NextToken; the rules are written once here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelyard.api import pagination
from modelyard.store.base import MetadataStore, Query, Record

_SORT_COLUMNS = {"Name": "name", "CreationTime": "created", "Status": "status",
                 "LastModifiedTime": "modified"}


def list_page(
    store: MetadataStore,
    kind: str,
    params: Mapping[str, Any],
    *,
    default_order: str = "Ascending",
    default_sort: str = "CreationTime",
    status_field: str = "StatusEquals",
) -> tuple[list[Record], str | None]:
    """One page of records of ``kind`` for a List* request, and the NextToken (or None)."""
    offset, limit = pagination.page_window(params)
    status = params.get(status_field)
    query = Query(
        kind=kind,
        name_contains=params.get("NameContains"),
        status_in=[status] if status else None,
        created_after=params.get("CreationTimeAfter"),
        created_before=params.get("CreationTimeBefore"),
        modified_after=params.get("LastModifiedTimeAfter"),
        modified_before=params.get("LastModifiedTimeBefore"),
        sort_by=_SORT_COLUMNS.get(params.get("SortBy", default_sort), "created"),
        descending=params.get("SortOrder", default_order) == "Descending",
        offset=offset,
        limit=limit + 1,
    )
    records = store.list(query)
    token = None
    if len(records) > limit:
        records = records[:limit]
        token = pagination.next_token(params, offset + limit)
    return records, token
