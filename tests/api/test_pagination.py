"""Opaque NextTokens bound to the query that produced them."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.api.pagination import decode_token, next_token, page_window
from modelyard.core.errors import ValidationError


def _pages(items: list[int], params: dict[str, Any]) -> list[list[int]]:
    """Walk every page the way a boto3 paginator does."""
    pages: list[list[int]] = []
    request = dict(params)
    while True:
        offset, limit = page_window(request)
        rows = items[offset : offset + limit + 1]
        pages.append(rows[:limit])
        if len(rows) <= limit:
            return pages
        request = dict(params, NextToken=next_token(params, offset + limit))


def test_walks_all_pages_with_default_size() -> None:
    pages = _pages(list(range(25)), {"NameContains": "abc"})
    assert [len(p) for p in pages] == [10, 10, 5]
    assert sum(pages, []) == list(range(25))


def test_max_results_sets_page_size() -> None:
    pages = _pages(list(range(7)), {"MaxResults": 3})
    assert pages == [[0, 1, 2], [3, 4, 5], [6]]


def test_page_size_may_change_between_pages() -> None:
    token = next_token({"MaxResults": 3, "SortOrder": "Descending"}, 3)
    assert page_window({"MaxResults": 5, "SortOrder": "Descending", "NextToken": token}) == (3, 5)


def test_token_is_url_safe_text() -> None:
    token = next_token({"NameContains": "x" * 50}, 1234)
    assert token.isascii() and "=" not in token and "+" not in token and "/" not in token


@pytest.mark.parametrize("token", ["", "garbage!", "eyJvIjogLTF9", "bnVsbA", 5])
def test_malformed_tokens_are_rejected(token: Any) -> None:
    with pytest.raises(ValidationError, match="^Invalid pagination token$"):
        page_window({"NextToken": token})


def test_token_from_another_query_is_rejected() -> None:
    token = next_token({"NameContains": "abc"}, 10)
    assert decode_token(token, {"NameContains": "abc"}) == 10
    with pytest.raises(ValidationError) as info:
        page_window({"NameContains": "abd", "NextToken": token})
    assert info.value.code == "ValidationException"
    assert info.value.message == "Invalid pagination token"


@pytest.mark.parametrize(
    ("value", "constraint"),
    [
        (0, "Member must have value greater than or equal to 1"),
        (101, "Member must have value less than or equal to 100"),
        ("5", "Member must be an integer"),
    ],
)
def test_max_results_is_validated(value: Any, constraint: str) -> None:
    with pytest.raises(ValidationError) as info:
        page_window({"MaxResults": value})
    assert info.value.message == (
        f"1 validation error detected: Value '{value}' at 'maxResults' failed to satisfy "
        f"constraint: {constraint}"
    )


def test_logs_key_names_and_bounds() -> None:
    params = {"logGroupName": "/aws/sagemaker/TrainingJobs", "limit": 50}
    assert page_window(params, default_max=50, max_max=50, token_key="nextToken",
                       limit_key="limit") == (0, 50)
    token = next_token(params, 50, token_key="nextToken", limit_key="limit")
    resumed = dict(params, nextToken=token)
    assert page_window(resumed, 50, 50, token_key="nextToken", limit_key="limit") == (50, 50)
