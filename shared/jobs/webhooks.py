"""Optional webhook delivery of alerts (Slack-compatible: `{"text": ...}` plus the fields).

Best effort on top of Pub/Sub, which stays the record: a receiver that is down gets a few
retries with backoff (bounded, so a dead receiver cannot hold up the sync) and then a
logged ERROR. With `VBG_ALERT_WEBHOOK_SECRET` set, each POST carries
`X-VBG-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>`; receivers recompute it
with the shared secret and compare in constant time (`verify`).

The alert's `text` holds what key holders wrote (a display name, an alias, a URI, Vertex's
error about their input); the receivers read it as markup, so it is escaped for each format
they speak (`webhook_text`); the other fields stay as they are (JSON values, not markup).
"""

import hashlib
import hmac
import json
import time
import unicodedata

import requests

from shared.core import logs
from shared.core.config import settings

SIGNATURE_HEADER = "X-VBG-Signature"
ATTEMPTS = 4
BASE_DELAY = 0.5
MAX_DELAY = 4.0
TIMEOUT = (3, 10)


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str | None) -> bool:
    return header is not None and hmac.compare_digest(sign(body, secret), header)


# Slack reads `&`, `<` and `>` in `text` as control characters (`<!channel>` pings a channel,
# `<https://x|label>` shows a link under any label) and asks for them as these entities, which
# it shows as the characters (https://api.slack.com/reference/surfaces/formatting#escaping).
SLACK_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# Slack-compatible receivers that read `text` as Markdown (Mattermost:
# https://developers.mattermost.com/integrate/webhooks/incoming/; Discord's Slack endpoint)
# make a link of `[label](url)` and ping on a bare `@channel`, `@all`, `@here` or `@user`: a
# word joiner (U+2060, invisible) after each `@` and between `]` and `(` keeps the characters
# and drops the meaning (inferred from Markdown's rules: a link is `](` adjacent).
WORD_JOINER = "\u2060"
# Characters that would break the one line or reorder what is shown (bidi controls).
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def webhook_text(text: str) -> str:
    """`text` as Slack mrkdwn and Markdown receivers show it literally, on one line."""
    out = []
    for char in text:
        if char in BIDI_CONTROLS:
            continue
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            char = " "
        out.append(SLACK_ENTITIES.get(char, char))
        if char == "@":
            out.append(WORD_JOINER)
    return "".join(out).replace("](", "]" + WORD_JOINER + "(")


def payload(alert: dict, severity: str) -> bytes:
    body = {**alert, "severity": severity}
    if isinstance(body.get("text"), str):
        body["text"] = webhook_text(body["text"])
    return json.dumps(body, default=str, sort_keys=True).encode()


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def deliver(
    alert: dict,
    *,
    severity: str = "INFO",
    url: str | None = None,
    secret: str | None = None,
    attempts: int = ATTEMPTS,
    base_delay: float = BASE_DELAY,
) -> bool:
    """POST the alert; True when the receiver accepted it (2xx). Never raises."""
    url = url if url is not None else settings().alert_webhook_url
    secret = secret if secret is not None else settings().alert_webhook_secret
    if not url:
        return False
    body = payload(alert, severity)
    headers = {"Content-Type": "application/json"}
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    outcome = ""
    for attempt in range(1, attempts + 1):
        try:
            response = requests.post(url, data=body, headers=headers, timeout=TIMEOUT)
            if 200 <= response.status_code < 300:
                logs.info(
                    "alert webhook delivered",
                    kind=alert.get("kind"),
                    job_id=alert.get("job_id"),
                    attempt=attempt,
                )
                return True
            outcome = f"HTTP {response.status_code}"
            if not _retryable(response.status_code):
                break
        except requests.RequestException as exc:
            outcome = repr(exc)
        if attempt < attempts:
            time.sleep(min(base_delay * 2 ** (attempt - 1), MAX_DELAY))
    logs.error(
        "alert webhook not delivered",
        kind=alert.get("kind"),
        job_id=alert.get("job_id"),
        attempts=attempt,
        outcome=outcome,
    )
    return False
