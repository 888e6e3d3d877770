"""A run's records: `runs/{run_id}` and its pieces, `runs/{run_id}/pieces/{index:05d}`.

A run is what one `POST /v1/gateway/runs` asked for: an input of any size, cut into pieces
(contiguous ranges of its lines) that each run as one Vertex job through the one create
path. The run holds the whole (owner, model, folders, the whole estimate, state); each piece
its range, its input file in the staging bucket, its own state and, once created, its job.
Piece states move one way (a transaction each, so that at-least-once events move a piece
once): `queued` -> `submitting` -> `running` -> `ended` -> `merged`, or `failed` (refused at
create) or `cancelled` (cancelled before it started); `submitting` goes back to `queued`
when the create must be tried again later (429, unavailable).
"""

import secrets
from collections.abc import Callable
from datetime import UTC, datetime

from google.cloud import firestore

from shared.core import clients

RUNS = "runs"
PIECES = "pieces"

QUEUED, SUBMITTING, RUNNING, ENDED, MERGED = "queued", "submitting", "running", "ended", "merged"
FAILED, CANCELLED = "failed", "cancelled"
ACTIVE = (SUBMITTING, RUNNING)  # what counts against the concurrency limits
UNRUN = (FAILED, CANCELLED)  # pieces that never ran: merged as "not processed" lines

# Run states, as the API shows them.
RUN_RUNNING = "RUNNING"
RUN_CANCELLING = "CANCELLING"
RUN_SUCCEEDED = "SUCCEEDED"
RUN_PARTIALLY_SUCCEEDED = "PARTIALLY_SUCCEEDED"
RUN_FAILED = "FAILED"
RUN_CANCELLED = "CANCELLED"
RUN_TERMINAL = (RUN_SUCCEEDED, RUN_PARTIALLY_SUCCEEDED, RUN_FAILED, RUN_CANCELLED)
RUN_STATES = (RUN_RUNNING, RUN_CANCELLING, *RUN_TERMINAL)


def settled(piece: dict) -> bool:
    """Nothing left to do: merged, or never run and its "not processed" lines written."""
    state = piece.get("state")
    return state == MERGED or (state in UNRUN and bool(piece.get("merge")))


def new_id() -> str:
    return "run-" + secrets.token_hex(8)


def now() -> datetime:
    return datetime.now(UTC)


def run_ref(run_id: str):
    return clients.firestore().collection(RUNS).document(run_id)


def piece_id(index: int) -> str:
    return f"{index:05d}"


def piece_ref(run_id: str, index: int):
    return run_ref(run_id).collection(PIECES).document(piece_id(index))


def get(run_id: str) -> dict | None:
    snapshot = run_ref(run_id).get()
    return {**snapshot.to_dict(), "run_id": run_id} if snapshot.exists else None


def pieces(run_id: str) -> list[dict]:
    """Every piece of the run, in input order."""
    found = run_ref(run_id).collection(PIECES).order_by("index").stream()
    return [snapshot.to_dict() for snapshot in found]


def create(run: dict, piece_docs: list[dict]) -> None:
    """The run and its pieces, in batches of at most 400 writes (the run first)."""
    db = clients.firestore()
    batch = db.batch()
    batch.create(run_ref(run["run_id"]), run)
    count = 1
    for piece in piece_docs:
        if count == 400:
            batch.commit()
            batch, count = db.batch(), 0
        batch.create(piece_ref(run["run_id"], piece["index"]), piece)
        count += 1
    batch.commit()


def update(run_id: str, **fields) -> None:
    run_ref(run_id).update({**fields, "updated": now()})


def move_piece(
    run_id: str, index: int, allowed: tuple[str, ...], change: Callable[[dict], dict]
) -> dict | None:
    """Change one piece in a transaction if its state is one of `allowed`; the new piece,
    or None when it was not (another delivery moved it first)."""
    db = clients.firestore()
    ref = piece_ref(run_id, index)

    @firestore.transactional
    def apply(transaction):
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists:
            return None
        piece = snapshot.to_dict()
        if piece.get("state") not in allowed:
            return None
        fields = {**change(piece), "updated": now()}
        transaction.update(ref, fields)
        return {**piece, **fields}

    return apply(db.transaction())


def finish(run_id: str, state: str, counts: dict) -> bool:
    """Make the run terminal once; True for the delivery that did."""
    db = clients.firestore()
    ref = run_ref(run_id)

    @firestore.transactional
    def apply(transaction):
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists or (snapshot.to_dict() or {}).get("terminal"):
            return False
        at = now()
        transaction.update(
            ref, {"state": state, "terminal": True, "ended": at, "updated": at, "counts": counts}
        )
        return True

    return apply(db.transaction())


def active_count(*, key_id: str | None = None, deployment: str | None = None) -> int:
    """Pieces of any run submitting or running, of one key or one deployment (the
    concurrency limits)."""
    query = clients.firestore().collection_group(PIECES)
    if key_id is not None:
        query = query.where(filter=firestore.FieldFilter("owner_key_id", "==", key_id))
    else:
        query = query.where(filter=firestore.FieldFilter("deployment_label", "==", deployment))
    query = query.where(filter=firestore.FieldFilter("state", "in", [SUBMITTING, RUNNING]))
    result = query.count().get()
    return int(result[0][0].value)


def open_runs(limit: int) -> list[str]:
    """Ids of runs not yet terminal, least recently updated first."""
    query = (
        clients.firestore()
        .collection(RUNS)
        .where(filter=firestore.FieldFilter("terminal", "==", False))
        .order_by("updated")
        .limit(limit)
    )
    return [snapshot.id for snapshot in query.stream()]


def list_visible(*, key_id=None, team=None, limit=50, before=None) -> list[dict]:
    """Runs newest first: a key's own, a team's, or all (`key_id` and `team` None)."""
    query = clients.firestore().collection(RUNS)
    if key_id is not None:
        query = query.where(filter=firestore.FieldFilter("owner_key_id", "==", key_id))
    elif team is not None:
        query = query.where(filter=firestore.FieldFilter("team", "==", team))
    query = query.order_by("created", direction=firestore.Query.DESCENDING)
    if before is not None:
        query = query.start_after({"created": before})
    return [{**s.to_dict(), "run_id": s.id} for s in query.limit(limit).stream()]
