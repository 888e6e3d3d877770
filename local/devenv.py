"""Print shell exports for the running local stack: `eval "$(python -m local.devenv)"`.

Sets GW (the gateway URL), MASTER_KEY, BUCKET, GOOGLE_CLOUD_PROJECT and the standard
*_EMULATOR_HOST variables so that curl, `vbg` and Google's own clients reach the local stack
(and BIGQUERY_EMULATOR_HOST with VBG_BOOKS_DATASET where it runs the BigQuery emulator).
Reads `.local/stack.json`, or the file named by VBG_STACK_FILE.
"""

import json
import os
import shlex
import sys
from pathlib import Path


def exports(info: dict) -> dict[str, str]:
    books = (
        {"BIGQUERY_EMULATOR_HOST": info["bigquery_url"], "VBG_BOOKS_DATASET": info["books_dataset"]}
        if info.get("bigquery_url")
        else {}
    )
    return {
        "GW": info["gateway_url"],
        "VBG_GATEWAY_URL": info["gateway_url"],
        "MASTER_KEY": info["master_key"],
        "VBG_MASTER_KEY": info["master_key"],
        "BUCKET": info["bucket"],
        "FIRESTORE_EMULATOR_HOST": info["firestore_host"],
        "PUBSUB_EMULATOR_HOST": info["pubsub_host"],
        "STORAGE_EMULATOR_HOST": info["storage_url"],
        "VBG_PROJECT": info["project"],
        # Google's own clients (google-genai, google-cloud-storage) read their project here.
        "GOOGLE_CLOUD_PROJECT": info["project"],
        **books,
    }


def main() -> int:
    path = Path(os.environ.get("VBG_STACK_FILE") or Path(".local") / "stack.json")
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        print(f"echo 'no running local stack ({path} missing): run make dev first' >&2; false")
        return 1
    for name, value in exports(info).items():
        print(f"export {name}={shlex.quote(str(value))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
