"""What a test can read from a PDF without a PDF library: the header, the page count, the document
title and the outline's entries (Chromium writes the title and the headings' bookmarks as UTF-16 strings).

The page text itself sits in compressed content streams in CID-keyed fonts; no extractor is installed
here (no pypdf, no pdftotext), so the headings are read from the outline (``--generate-pdf-document-outline``).
"""
from __future__ import annotations

import re
import zlib


def _streams(data: bytes) -> list[bytes]:
    out = []
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            out.append(zlib.decompress(m.group(1)))
        except zlib.error:
            out.append(m.group(1))
    return out


def page_count(data: bytes) -> int:
    """The /Count of the page tree's root (the /Pages object with no /Parent)."""
    for body in [data, *_streams(data)]:
        for m in re.finditer(rb"<<(.*?)>>", body, re.S):
            d = m.group(1)
            if re.search(rb"/Type\s*/Pages\b", d) and b"/Parent" not in d:
                count = re.search(rb"/Count\s+(\d+)", d)
                if count:
                    return int(count.group(1))
    return 0


def _decode(literal: bytes) -> str:
    if literal.startswith(b"<"):
        raw = bytes.fromhex(literal[1:-1].decode())
    else:
        raw = re.sub(rb"\\([()\\])", rb"\1", literal[1:-1])
    if raw.startswith(b"\xfe\xff"):
        return raw[2:].decode("utf-16-be", errors="replace")
    return raw.decode("latin-1")


def titles(data: bytes) -> list[str]:
    """Every /Title string: the document's (Info) and the outline's (bookmarks of the headings)."""
    found = []
    for body in [data, *_streams(data)]:
        found += [_decode(m.group(1)) for m in re.finditer(rb"/Title\s*(<[0-9A-Fa-f\s]*>|\((?:\\.|[^\\)])*\))", body)]
    return found
