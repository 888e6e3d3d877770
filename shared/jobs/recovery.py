"""What a process killed mid-way left behind, taken up first in every sync tick.

Cloud Functions kills an instance at any instruction (a crash, a deploy, scale-in), and the
event it held may never come again. Each tick runs, in order, each step isolated (one
failing is logged and the tick goes on):

1. `adoption.adopt_pending`: Vertex jobs created but never recorded (their intent pending);
2. `alert_outbox.resume`: alerts claimed but never published.

Then the tick syncs the jobs and runs the doors' hooks (`ticks`: the OpenAI door settles a
batch whose create died, its job adopted in step 1 if Vertex had it). A step must be
idempotent and bounded (a page per tick).
"""

from shared.core import logs


def run() -> None:
    from shared.jobs import adoption, alert_outbox

    for step in (adoption.adopt_pending, alert_outbox.resume):
        try:
            step()
        except Exception as exc:
            logs.error(
                "recovery step failed; the tick goes on", step=step.__name__, error=repr(exc)
            )
