"""Print the alerts waiting on the local stack's watch subscription, one JSON line each.

    .venv/bin/python -m local.alerts [--max 10] [--wait 5]

Reads the emulator and project from PUBSUB_EMULATOR_HOST and VBG_PROJECT (set them with
`eval "$(python -m local.devenv)"`), acknowledges what it prints.
"""

import argparse
import json
import os
import sys

SUBSCRIPTION = "batch-job-alerts-watch"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="print the local stack's alerts")
    parser.add_argument("--max", type=int, default=10)
    parser.add_argument("--wait", type=float, default=5.0, help="seconds to wait for one")
    args = parser.parse_args(argv)
    if not os.environ.get("PUBSUB_EMULATOR_HOST") or not os.environ.get("VBG_PROJECT"):
        print(
            'set PUBSUB_EMULATOR_HOST and VBG_PROJECT: eval "$(python -m local.devenv)"',
            file=sys.stderr,
        )
        return 2
    from google.api_core import exceptions
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    path = subscriber.subscription_path(os.environ["VBG_PROJECT"], SUBSCRIPTION)
    try:
        response = subscriber.pull(subscription=path, max_messages=args.max, timeout=args.wait)
    except exceptions.DeadlineExceeded:
        return 0
    for received in response.received_messages:
        message = received.message
        print(
            json.dumps(
                {"attributes": dict(message.attributes), "body": json.loads(message.data or b"{}")}
            )
        )
    if response.received_messages:
        subscriber.acknowledge(
            subscription=path, ack_ids=[r.ack_id for r in response.received_messages]
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
