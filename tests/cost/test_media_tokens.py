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
