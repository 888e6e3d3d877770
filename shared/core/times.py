"""RFC 3339 times in and out: Vertex's strings, Firestore's datetimes, the API's strings."""

from datetime import UTC, datetime


def parse(value) -> datetime | None:
    """A datetime (naive taken as UTC) or an RFC 3339 string, Vertex's nanoseconds cut to
    microseconds; None for anything else."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    head, dot, rest = value.partition(".")
    if dot:
        zone = rest.lstrip("0123456789")
        digits = rest[: len(rest) - len(zone)]
        value = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso(value) -> str | None:
    """The API's form: UTC, `Z`-suffixed."""
    moment = parse(value)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None
