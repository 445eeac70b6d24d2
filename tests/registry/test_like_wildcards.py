"""The ``q`` text filter of list endpoints is a literal substring: LIKE's ``%`` and ``_`` (and the escape
character) in it match only themselves, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.support.app import Api

PROMPTS = {
    "like/plain": "nothing special here",
    "like/under_score": "a name with an underscore",
    "like/percent": "100% sure",
    "like/slashes": "either//or",
    "like/backslash": "C:\\temp",
}


async def names(api: Api, url: str, q: str) -> set[str]:
    r = await api.get(url, params={"q": q, "prefix": "like", "limit": 200})
    assert r.status_code == 200, r.text
    return {item["name"] for item in r.json()["items"]}


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("%", {"like/percent"}),
        ("_", {"like/under_score"}),
        ("%%", set()),
        ("0% S", {"like/percent"}),  # case-insensitive, still literal
        ("r_s", {"like/under_score"}),
        ("//", {"like/slashes"}),
        ("\\", {"like/backslash"}),
        ("special", {"like/plain"}),
    ],
)
async def test_wildcards_in_q_match_only_themselves(api: Api, q: str, expected: set[str]) -> None:
    for name, description in PROMPTS.items():
        r = await api.post(
            "/api/v1/prompts", json={"name": name, "description": description, "template": "x"}
        )
        assert r.status_code == 201, r.text
    assert await names(api, "/api/v1/prompts", q) == expected


async def test_dataset_list_q_is_literal_too(api: Api) -> None:
    for name, description in (("like/a_b", "one"), ("like/ab", "50% off")):
        body = {"name": name, "description": description, "cases": [{"input": {"x": "1"}}]}
        r = await api.post("/api/v1/datasets", json=body)
        assert r.status_code == 201, r.text
    assert await names(api, "/api/v1/datasets", "_") == {"like/a_b"}
    assert await names(api, "/api/v1/datasets", "%") == {"like/ab"}
