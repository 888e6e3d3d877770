from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.core import times


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("2025-01-02T03:04:05Z", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2025-01-02T03:04:05.123456789Z", datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2025-01-02T03:04:05.5+02:00", datetime(2025, 1, 2, 1, 4, 5, 500000, tzinfo=UTC)),
        ("2025-01-02T03:04:05", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ],
)
def test_parse_vertex_and_iso_strings(text, wanted):
    assert times.parse(text) == wanted


@pytest.mark.parametrize("value", [None, "", "yesterday", 12])
def test_parse_refuses_what_is_not_a_time(value):
    assert times.parse(value) is None


def test_iso_is_utc_with_z():
    east = datetime(2025, 1, 2, 5, 0, tzinfo=timezone(timedelta(hours=2)))
    assert times.iso(east) == "2025-01-02T03:00:00Z"
    assert times.iso(datetime(2025, 1, 2, 3, 0)) == "2025-01-02T03:00:00Z"
    assert times.iso(None) is None
