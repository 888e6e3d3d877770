"""The independent price reference of the cost tests, pinned by figures worked out by hand."""

import json
from decimal import Decimal

import pytest

from tests.cost.reference import expected_cost, usd


def rows(*usages, failed=0) -> bytes:
    lines = [{"status": "", "response": {"usageMetadata": u}} for u in usages]
    lines += [{"status": "boom", "request": {}}] * failed
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


@pytest.mark.parametrize(
    ("model", "usage", "nanos"),
    [
        # 1000 x 0.15 + (200 + 100) x 1.25 = 525 USD per 1M tokens -> 525,000 nano-dollars
        (
            "gemini-2.5-flash",
            {"promptTokenCount": 1000, "candidatesTokenCount": 200, "thoughtsTokenCount": 100},
            525_000,
        ),
        # 400 cached: 600 x 0.15 + 400 x 0.03 + 300 x 1.25 = 90 + 12 + 375 = 477
        (
            "gemini-2.5-flash",
            {
                "promptTokenCount": 1000,
                "cachedContentTokenCount": 400,
                "candidatesTokenCount": 200,
                "thoughtsTokenCount": 100,
            },
            477_000,
        ),
        # tool-use prompt tokens are input: (10 + 20) x 0.15 = 4.5 -> 4,500
        ("gemini-2.5-flash", {"promptTokenCount": 10, "toolUsePromptTokenCount": 20}, 4_500),
        # at the 200k boundary, the base tier: 200,000 x 0.625 + 10 x 5 = 125,050
        ("gemini-2.5-pro", {"promptTokenCount": 200_000, "candidatesTokenCount": 10}, 125_050_000),
        # one token above, the long tier for the whole row: 200,001 x 1.25 + 10 x 7.5
        ("gemini-2.5-pro", {"promptTokenCount": 200_001, "candidatesTokenCount": 10}, 250_076_250),
    ],
)
def test_one_row_by_hand(model, usage, nanos):
    assert expected_cost(rows(usage), model).cost_nanos == nanos


def test_failed_rows_count_but_cost_nothing():
    found = expected_cost(rows({"promptTokenCount": 1000}, failed=2), "gemini-2.5-flash")
    assert (found.rows, found.succeeded, found.failed) == (3, 1, 2)
    assert found.cost_nanos == 150_000


def test_a_file_is_rounded_once_not_per_row():
    # 1 token at 1.5e-9 USD = 1.5 nano-dollars a row: three rows are 4.5 -> 5, not 3 x 2 = 6.
    overrides = {"input_cost_per_token_batches": Decimal("0.0000000015")}
    data = rows(*[{"promptTokenCount": 1}] * 3)
    assert expected_cost(data, "gemini-2.5-flash", overrides).cost_nanos == 5


def test_usd_has_nine_places():
    assert usd(1_234_567_890) == "1.234567890"
    assert usd(5) == "0.000000005"
