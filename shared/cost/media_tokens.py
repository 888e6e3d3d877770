"""Input tokens of a request's media parts (inlineData, fileData), by kind and size.

Google's rules (facts; sources below) and what the gateway infers where they are silent:

- Images: both sides <= 384 px cost 258 tokens; a larger image is cut into 768 x 768 tiles,
  258 tokens each (https://ai.google.dev/gemini-api/docs/tokens, stated for Gemini 2.0;
  the same rule in Firebase's "Supported input files and requirements for the Vertex AI
  Gemini API", https://firebase.google.com/docs/vertex-ai/input-file-requirements, which also
  says larger images are scaled down to fit 3072 x 3072 first). The gateway reads the
  dimensions from the image's header (PNG, JPEG, GIF, WebP). Inferred: the rule holds for
  the 2.5 models; an image whose header it cannot read costs 258 (low), 4 tiles (expected)
  and 16 tiles, the most a 3072 x 3072 image makes (high).
- Video: 263 tokens per second; audio: 32 tokens per second (ai.google.dev's token page, as
  quoted by https://geminibyexample.com/027-calculate-input-tokens/). The duration of a WAV
  file is read from its header (exact); of a video clipped by `videoMetadata` with both
  offsets, the clip; otherwise it is inferred from the size at an assumed bit rate: video 8
  Mbit/s (low), 2 Mbit/s (expected), 0.5 Mbit/s (high); audio 256, 128 and 32 kbit/s. A
  smaller assumed bit rate means more seconds, so `high` is the budget's safe side.
- PDF: 258 tokens per page (recalled from Google's document-understanding pages, not
  re-read: an inference to re-check). Pages are counted in an inline PDF (`/Type /Page`
  objects); for a referenced one they are inferred from the size: 200 KB (low), 50 KB
  (expected) and 10 KB (high) a page.
- Text (`text/*`, JSON, ...): its characters at the estimate's characters per token.
- Any other kind: as an image whose header cannot be read.

Each function returns (low, expected, high) tokens.
"""

import base64
import binascii
import math
import re
import struct

TOKENS_PER_TILE = 258
SMALL_IMAGE_SIDE = 384
TILE_SIDE = 768
MAX_IMAGE_SIDE = 3072
UNKNOWN_IMAGE_TILES = (1, 4, 16)
VIDEO_TOKENS_PER_SECOND = 263
AUDIO_TOKENS_PER_SECOND = 32
VIDEO_BYTES_PER_SECOND = (1_000_000, 250_000, 62_500)
AUDIO_BYTES_PER_SECOND = (32_000, 16_000, 4_000)
PDF_TOKENS_PER_PAGE = 258
PDF_BYTES_PER_PAGE = (200_000, 50_000, 10_000)
CHARS_PER_TOKEN = (5, 4, 2)
HEADER_BYTES = 64 * 1024
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")

Levels = tuple[int, int, int]


def image_dimensions(head: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG, GIF, WebP or JPEG header; None when not readable."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24:
        return struct.unpack(">II", head[16:24])
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        return struct.unpack("<HH", head[6:10])
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp(head)
    if head[:2] == b"\xff\xd8":
        return _jpeg(head)
    return None


def _webp(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        return width, int.from_bytes(head[27:30], "little") + 1
    if chunk == b"VP8 " and len(head) >= 30:
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _jpeg(head: bytes) -> tuple[int, int] | None:
    """The first start-of-frame marker's size (markers walked, bounded by the header)."""
    at = 2
    while at + 9 <= len(head):
        if head[at] != 0xFF:
            return None
        marker = head[at + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            at += 2
            continue
        length = struct.unpack(">H", head[at + 2 : at + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", head[at + 5 : at + 9])
            return width, height
        at += 2 + length
    return None


def image_tokens(size: tuple[int, int] | None) -> Levels:
    if size is None or min(size) <= 0:
        low, expected, high = (TOKENS_PER_TILE * tiles for tiles in UNKNOWN_IMAGE_TILES)
        return low, expected, high
    width, height = size
    if width <= SMALL_IMAGE_SIDE and height <= SMALL_IMAGE_SIDE:
        return (TOKENS_PER_TILE,) * 3
    scale = min(1.0, MAX_IMAGE_SIDE / max(width, height))
    width, height = max(1, round(width * scale)), max(1, round(height * scale))
    tokens = math.ceil(width / TILE_SIDE) * math.ceil(height / TILE_SIDE) * TOKENS_PER_TILE
    return (tokens,) * 3


def wav_seconds(head: bytes, size: int) -> float | None:
    """Duration of a PCM WAV from its `fmt ` byte rate and the object's size."""
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE" or len(head) < 32:
        return None
    byte_rate = struct.unpack("<I", head[28:32])[0]
    return size / byte_rate if byte_rate else None


def _by_rate(size: int, rates: tuple[int, int, int], per_second: int) -> Levels:
    low, expected, high = (math.ceil(size / rate * per_second) for rate in rates)
    return low, expected, high


def _offset_seconds(value) -> float | None:
    """A protobuf Duration in JSON ("12.5s"), or None."""
    if isinstance(value, str) and value.endswith("s"):
        try:
            seconds = float(value[:-1])
        except ValueError:
            return None
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    return None


def clip_seconds(video_metadata) -> float | None:
    if not isinstance(video_metadata, dict):
        return None
    start = _offset_seconds(video_metadata.get("startOffset", "0s"))
    end = _offset_seconds(video_metadata.get("endOffset"))
    if start is None or end is None or end < start:
        return None
    return end - start


def kind_of(mime_type) -> str:
    mime = mime_type.lower() if isinstance(mime_type, str) else ""
    if mime.startswith("image/"):
        return "image"
    if mime.startswith("video/"):
        return "video"
    if mime.startswith("audio/"):
        return "audio"
    if mime == "application/pdf":
        return "pdf"
    if mime.startswith("text/") or mime in ("application/json", "application/x-ndjson"):
        return "text"
    return "other"


def tokens(
    mime_type, size: int | None, head: bytes = b"", *, whole: bytes | None = None, clip=None
) -> Levels:
    """A media part's tokens: `size` bytes (None: unknown), `head` its first bytes, `whole`
    all its bytes when inline, `clip` the part's `videoMetadata`."""
    kind = kind_of(mime_type)
    seconds = clip_seconds(clip) if kind == "video" else None
    if seconds is not None:
        exact = math.ceil(seconds * VIDEO_TOKENS_PER_SECOND)
        return exact, exact, exact
    if kind in ("image", "other") or size is None:
        return image_tokens(image_dimensions(head) if kind == "image" else None)
    if kind == "video":
        return _by_rate(size, VIDEO_BYTES_PER_SECOND, VIDEO_TOKENS_PER_SECOND)
    if kind == "audio":
        seconds = wav_seconds(head, size)
        if seconds is not None:
            exact = math.ceil(seconds * AUDIO_TOKENS_PER_SECOND)
            return exact, exact, exact
        return _by_rate(size, AUDIO_BYTES_PER_SECOND, AUDIO_TOKENS_PER_SECOND)
    if kind == "pdf":
        if whole is not None:
            pages = max(1, len(_PDF_PAGE.findall(whole)))
            return (pages * PDF_TOKENS_PER_PAGE,) * 3
        low, expected, high = (
            max(1, math.ceil(size / per_page)) * PDF_TOKENS_PER_PAGE
            for per_page in PDF_BYTES_PER_PAGE
        )
        return low, expected, high
    low, expected, high = (max(1, math.ceil(size / per)) for per in CHARS_PER_TOKEN)
    return low, expected, high


def _inline(blob: dict, clip) -> Levels:
    data = blob.get("data")
    data = data if isinstance(data, str) else ""
    size = len(data) * 3 // 4
    head_chars = data[: HEADER_BYTES // 3 * 4]
    try:
        head = base64.b64decode(head_chars + "=" * (-len(head_chars) % 4))
        whole = (
            base64.b64decode(data + "=" * (-len(data) % 4))
            if kind_of(blob.get("mimeType")) == "pdf"
            else None
        )
    except (binascii.Error, ValueError):
        head, whole = b"", None
    return tokens(blob.get("mimeType"), size, head, whole=whole, clip=clip)


def part_tokens(part: dict, lookup=None) -> Levels | None:
    """A part's media tokens, or None when it holds no media. `lookup(uri)` gives a
    referenced object's (size, first bytes), or None when unknown."""
    clip = part.get("videoMetadata")
    blob = part.get("inlineData")
    if isinstance(blob, dict):
        return _inline(blob, clip)
    ref = part.get("fileData")
    if isinstance(ref, dict):
        uri = ref.get("fileUri")
        found = lookup(uri) if lookup is not None and isinstance(uri, str) else None
        size, head = found if found is not None else (None, b"")
        return tokens(ref.get("mimeType"), size, head, clip=clip)
    return None
