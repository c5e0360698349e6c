"""A small ``multipart/form-data`` reader for the one upload route.

Starlette's form parser needs the ``python-multipart`` package; an upload of one file
does not justify another dependency. Parts are split on the boundary byte for byte, so
binary files (XLSX) arrive unchanged.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from ledger.domain.errors import DomainError

_PARAM = re.compile(r';\s*([A-Za-z0-9_*-]+)=("(?:[^"\\]|\\.)*"|[^;]*)')


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def _params(header_value: str) -> dict[str, str]:
    out = {}
    for key, value in _PARAM.findall(header_value):
        value = value.strip()
        if value.startswith('"') and value.endswith('"'):
            value = value[1:-1].replace('\\"', '"')
        out[key.lower()] = value
    return out


def boundary_of(content_type: str) -> str:
    boundary = _params(content_type).get("boundary")
    if not boundary or len(boundary) > 200:
        raise DomainError("BODY_INVALID", "multipart upload without a boundary; send the file as multipart/form-data")
    return boundary


def parse_multipart(body: bytes, content_type: str) -> list[Part]:
    delimiter = b"\r\n--" + boundary_of(content_type).encode("latin-1")
    chunks = (b"\r\n" + body).split(delimiter)
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise DomainError("BODY_INVALID", "a part of the multipart upload has no headers; send the file again")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, colon, value = line.partition(":")
            if colon:
                headers[key.strip().lower()] = value.strip()
        disposition = _params(";" + headers.get("content-disposition", "").partition(";")[2])
        filename = disposition.get("filename")
        if "filename*" in disposition:  # RFC 5987: UTF-8''%E7%99%BB%E8%AE%B0.csv
            filename = unquote(disposition["filename*"].split("''", 1)[-1])
        parts.append(Part(disposition.get("name", ""), filename, headers.get("content-type"), data))
    return parts
