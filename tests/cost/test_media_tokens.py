"""Media tokens by kind and size (cost/media_tokens.py), against figures worked out by hand."""

import base64
import struct

from shared.cost import media_tokens as m


def test_image_tiles():
    assert m.image_tokens((384, 384)) == (258, 258, 258)  # both sides <= 384: one unit
    assert m.image_tokens((385, 10)) == (258, 258, 258)  # one 768 tile
    assert m.image_tokens((2000, 1000)) == (1548,) * 3  # 3 x 2 tiles x 258
    # 6144 x 1536 fits 3072 x 768 first: 4 x 1 tiles
    assert m.image_tokens((6144, 1536)) == (1032,) * 3
    assert m.image_tokens(None) == (258, 1032, 4128)  # 1, 4 and 16 tiles: inferred bounds


def test_dimensions_from_headers():
    png = b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR" + struct.pack(">II", 640, 480) + b"\0" * 8
    assert m.image_dimensions(png) == (640, 480)
    gif = b"GIF89a" + struct.pack("<HH", 30, 20) + b"\0" * 4
    assert m.image_dimensions(gif) == (30, 20)
    sof = b"\xff\xc0" + struct.pack(">HBHH", 17, 8, 900, 1600) + b"\0" * 12
    jpeg = b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", 6) + b"JFIF" + sof
    assert m.image_dimensions(jpeg) == (1600, 900)
    vp8x = b"RIFF\0\0\0\0WEBPVP8X" + b"\0" * 8 + (799).to_bytes(3, "little")
    assert m.image_dimensions(vp8x + (599).to_bytes(3, "little")) == (800, 600)
    assert m.image_dimensions(b"not an image") is None
    assert m.image_dimensions(b"\xff\xd8\x00") is None


def test_audio_and_video_by_duration():
    wav = b"RIFF\0\0\0\0WAVEfmt " + b"\0" * 12 + struct.pack("<I", 32_000)
    # 320,000 bytes at 32,000 bytes a second: 10 s x 32 tokens
    assert m.tokens("audio/wav", 320_000, wav) == (320, 320, 320)
    # an mp3 of 160,000 bytes: 5, 10 and 40 s at 256, 128 and 32 kbit/s
    assert m.tokens("audio/mpeg", 160_000) == (160, 320, 1280)
    # a video clipped to 12.5 s: ceil(12.5 x 263)
    assert m.tokens("video/mp4", None, clip={"startOffset": "2s", "endOffset": "14.5s"}) == (
        3288,
        3288,
        3288,
    )
    # 1,000,000 bytes: 1, 4 and 16 s at 8, 2 and 0.5 Mbit/s
    assert m.tokens("video/mp4", 1_000_000) == (263, 1052, 4208)
    assert m.tokens("video/mp4", None) == (258, 1032, 4128)  # nothing known


def test_pdf_pages_and_text():
    pdf = b"%PDF-1.7 /Type /Pages /Type /Page /Type/Page /Type /Page"
    part = {"inlineData": {"mimeType": "application/pdf", "data": base64.b64encode(pdf).decode()}}
    assert m.part_tokens(part) == (774, 774, 774)  # 3 pages x 258 (the /Pages tree is not one)
    # 100,000 bytes referenced: 1, 2 and 10 pages
    assert m.tokens("application/pdf", 100_000) == (258, 516, 2580)
    assert m.tokens("text/plain", 1000) == (200, 250, 500)
    assert m.part_tokens({"text": "x"}) is None


def test_a_referenced_object_is_sized_by_the_lookup():
    part = {"fileData": {"mimeType": "audio/mpeg", "fileUri": "gs://b/a.mp3"}}
    assert m.part_tokens(part, lambda uri: (160_000, b"")) == (160, 320, 1280)
    assert m.part_tokens(part, lambda uri: None) == (258, 1032, 4128)


def test_webp_lossy_lossless_and_extended_headers():
    """RIFF/WEBP chunks as libwebp writes them; sizes chosen by hand."""
    lossy = b"RIFF\0\0\0\0WEBPVP8 " + b"\0" * 10 + struct.pack("<HH", 0xC000 | 640, 480)
    assert m.image_dimensions(lossy) == (640, 480)  # the top two bits are the scale, dropped
    bits = (1023 - 1) | ((767 - 1) << 14)
    lossless = b"RIFF\0\0\0\0WEBPVP8L" + b"\0" * 5 + struct.pack("<I", bits)
    assert m.image_dimensions(lossless) == (1023, 767)
    assert m.image_dimensions(lossless[:24]) is None  # cut before the size
    assert m.image_dimensions(lossy[:29]) is None
    assert m.image_dimensions(b"RIFF\0\0\0\0WEBPVP8X" + b"\0" * 13) is None
    assert m.image_dimensions(b"RIFF\0\0\0\0WEBPXXXX" + b"\0" * 20) is None


def test_jpeg_markers_are_walked_to_the_first_frame():
    app = b"\xff\xe1" + struct.pack(">H", 10) + b"Exif\0\0\0\0"
    sof2 = b"\xff\xc2" + struct.pack(">HBHH", 17, 8, 300, 200) + b"\0" * 12
    jpeg = b"\xff\xd8" + b"\xff\x01" + b"\xff\xd0" + app + sof2
    assert m.image_dimensions(jpeg) == (200, 300)
    dht = b"\xff\xc4" + struct.pack(">H", 4) + b"\0\0"  # a table, not a frame
    assert m.image_dimensions(b"\xff\xd8" + dht + sof2) == (200, 300)
    assert m.image_dimensions(b"\xff\xd8" + b"\x00\x00" + sof2) is None  # not a marker
    assert m.image_dimensions(b"\xff\xd8" + sof2[:8]) is None  # cut inside the frame
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 15
    assert m.image_dimensions(png) is None  # too short for the size
    assert m.image_dimensions(b"GIF87a" + struct.pack("<HH", 2, 3)) == (2, 3)
    assert m.image_dimensions(b"GIF87a\x02\x00\x03") is None


def test_image_edges():
    assert m.image_tokens((0, 10)) == (258, 1032, 4128)  # a zero side: unreadable
    assert m.image_tokens((768, 768)) == (258,) * 3
    assert m.image_tokens((769, 384)) == (516,) * 3  # 2 x 1 tiles
    assert m.image_tokens((3072, 3072)) == (4128,) * 3  # 16 tiles, the most
    assert m.image_tokens((12288, 12288)) == (4128,) * 3  # scaled to 3072 first
    assert m.image_tokens((100_000, 1)) == (1032,) * 3  # 3072 x 1 after scaling: 4 x 1 tiles


def test_clips_and_kinds():
    assert m.clip_seconds({"endOffset": "3s"}) == 3.0  # the start defaults to 0
    assert m.clip_seconds({"startOffset": "4s", "endOffset": "3s"}) is None
    assert m.clip_seconds({"startOffset": "1s"}) is None
    assert m.clip_seconds({"endOffset": "3"}) is None  # a Duration ends in "s"
    assert m.clip_seconds({"endOffset": "xs"}) is None
    assert m.clip_seconds({"endOffset": "-1s"}) is None
    assert m.clip_seconds({"endOffset": "infs"}) is None
    assert m.clip_seconds("3s") is None
    assert m.clip_seconds({"startOffset": "0.5s", "endOffset": "2s"}) == 1.5
    assert [m.kind_of(k) for k in ("IMAGE/PNG", "video/mp4", "audio/wav", "application/pdf")] == [
        "image",
        "video",
        "audio",
        "pdf",
    ]
    assert [m.kind_of(k) for k in ("text/csv", "application/json", "application/zip", 7)] == [
        "text",
        "text",
        "other",
        "other",
    ]
    assert m.tokens("application/zip", 10**9) == (258, 1032, 4128)
    assert m.tokens("audio/mpeg", None) == (258, 1032, 4128)  # size unknown


def test_wav_headers():
    head = b"RIFF\0\0\0\0WAVEfmt " + b"\0" * 12 + struct.pack("<I", 16_000)
    assert m.wav_seconds(head, 48_000) == 3.0
    assert m.wav_seconds(head[:31], 48_000) is None
    assert m.wav_seconds(b"RIFF\0\0\0\0WAVX" + head[12:], 48_000) is None
    assert m.wav_seconds(head[:28] + b"\0\0\0\0", 48_000) is None  # no byte rate
    # 48,000 bytes at 16,000 a second = 3 s, 96 tokens; a non-WAV guess would differ
    assert m.tokens("audio/wav", 48_000, head) == (96, 96, 96)


def test_inline_parts():
    gif = b"GIF89a" + struct.pack("<HH", 1000, 2000) + b"\0" * 4
    part = {"inlineData": {"mimeType": "image/gif", "data": base64.b64encode(gif).decode()}}
    assert m.part_tokens(part) == (1548,) * 3  # 2 x 3 tiles
    unpadded = base64.b64encode(gif).decode().rstrip("=")
    part = {"inlineData": {"mimeType": "image/gif", "data": unpadded}}
    assert m.part_tokens(part) == (1548,) * 3
    broken = {"inlineData": {"mimeType": "image/gif", "data": "!!!!"}}
    assert m.part_tokens(broken) == (258, 1032, 4128)
    missing = {"inlineData": {"mimeType": "audio/mpeg"}}
    assert m.part_tokens(missing) == (0, 0, 0)  # no bytes: no seconds
    # 213,336 base64 characters count 3/4: 160,002 bytes; at 32,000, 16,000 and 4,000 bytes
    # a second x 32 tokens: ceil(160.002), ceil(320.004), ceil(1280.016)
    mp3 = {"inlineData": {"mimeType": "audio/mpeg", "data": "A" * 213_336}}
    assert m.part_tokens(mp3) == (161, 321, 1281)
    clip = {
        "fileData": {"mimeType": "video/mp4", "fileUri": "gs://b/v.mp4"},
        "videoMetadata": {"startOffset": "0s", "endOffset": "2s"},
    }
    assert m.part_tokens(clip) == (526, 526, 526)
    assert m.part_tokens({"fileData": "gs://b/x"}) is None
    assert m.part_tokens(
        {"fileData": {"mimeType": "image/png", "fileUri": 7}}, lambda u: 1 / 0
    ) == (
        258,
        1032,
        4128,
    )


def test_header_boundaries():
    """Sizes at the edges of each header (the shortest readable, unsigned fields)."""
    sig = b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR"
    assert m.image_dimensions(sig + struct.pack(">II", 2**31, 1)) == (2**31, 1)  # 24 bytes
    assert m.image_tokens((2**31, 1)) == (1032,) * 3  # unsigned: scaled to 3072 x 1
    assert m.image_dimensions(b"GIF89a" + struct.pack("<HH", 0xFFFF, 2)) == (0xFFFF, 2)
    assert m.image_dimensions(b"RIFF\0\0\0\0WEBQVP8X" + b"\0" * 18) is None
    assert m.image_dimensions(b"RIFX\0\0\0\0WEBPVP8X" + b"\0" * 18) is None
    sof = b"\xff\xcf" + struct.pack(">HBHH", 17, 8, 10, 20)  # SOF15, exactly 9 bytes read
    assert m.image_dimensions(b"\xff\xd8" + sof) == (20, 10)
    for standalone in (0xD7, 0xD8):  # RST7 and SOI carry no length
        assert m.image_dimensions(b"\xff\xd8" + bytes([0xFF, standalone]) + sof) == (20, 10)
    big = b"\xff\xe2" + struct.pack(">H", 0x8002) + b"\0" * 0x8000  # a length past 32767
    assert m.image_dimensions(b"\xff\xd8" + big + sof) == (20, 10)
