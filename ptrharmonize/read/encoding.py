"""Text encodings: check, sniff, and transcode to UTF-8 in chunks.

polars reads UTF-8 only. A file declared (or sniffed) in another encoding is decoded chunk by
chunk with an incremental decoder and written to a temporary UTF-8 file, so a large file never
has to fit in memory as one string. A byte sequence the encoding cannot decode raises
`ReadError` with the line it is on.

Line endings: polars splits records on '\n' only (a '\r\n' pair is fine). A file that also uses
a lone '\r' (classic Mac, or a spreadsheet that mixed conventions) is found while its bytes are
checked, and then goes through the same transcoding with every line ending written as '\n', so
each '\r', '\r\n' or '\n' ends exactly one line, as a text editor counts them.
"""

from __future__ import annotations

import codecs
import os
import tempfile
import threading
from pathlib import Path

from . import ReadError

CHUNK = 8 * 1024 * 1024
SNIFF_BYTES = 4 * 1024 * 1024

# Aliases centers write in mappings -> Python codec names.
ALIASES = {
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "utf-8-sig": "utf-8-sig",
    "utf8-sig": "utf-8-sig",
    "utf-8-bom": "utf-8-sig",
    "gbk": "gbk",
    "gb2312": "gbk",  # GBK is a superset of GB2312
    "gb18030": "gb18030",
    "cp936": "gbk",
    "latin-1": "latin-1",
    "latin1": "latin-1",
    "iso-8859-1": "latin-1",
    "iso8859-1": "latin-1",
    "cp1252": "cp1252",
    "windows-1252": "cp1252",
    "iso-8859-15": "iso-8859-15",
    "utf-16": "utf-16",
}

BOMS = [
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]


def normalize(encoding: str, display: str) -> str:
    name = ALIASES.get(encoding.strip().lower(), encoding.strip().lower())
    try:
        codecs.lookup(name)
    except LookupError:
        raise ReadError(display, message=f"unknown encoding '{encoding}' (use e.g. utf-8, gbk, latin-1)") from None
    return name


def bom_encoding(head: bytes) -> str | None:
    for bom, name in BOMS:
        if head.startswith(bom):
            return name
    return None


def _line_of(path: Path, offset: int) -> int:
    """1-based line number of byte `offset` (counting '\\n' before it)."""
    line = 1
    done = 0
    with path.open("rb") as fh:
        while done < offset:
            chunk = fh.read(min(CHUNK, offset - done))
            if not chunk:
                break
            line += chunk.count(b"\n")
            done += len(chunk)
    return line


def _decode_error(path: Path, display: str, encoding: str, offset: int, bad: bytes) -> ReadError:
    line = _line_of(path, offset)
    hint = (
        "declare the file's encoding in the mapping (`encoding: gbk` for Chinese Windows files, "
        "`encoding: latin-1` or `cp1252` for Western European ones), or save it as UTF-8"
    )
    return ReadError(
        display,
        row=line,
        message=f"bytes {bad.hex(' ')} at byte {offset} cannot be decoded as {encoding}; {hint}",
    )


def _pending(dec: codecs.IncrementalDecoder) -> int:
    """Bytes an incremental decoder holds from the previous chunk (the start of a character)."""
    try:
        state = dec.getstate()
    except (AttributeError, NotImplementedError):
        return 0
    return len(state[0]) if isinstance(state[0], bytes | bytearray) else 0


def check_decodes(path: Path, display: str, encoding: str = "utf-8", needle: bytes | None = None) -> bool:
    """Raise ReadError at the first byte sequence that does not decode, reading in chunks.

    Returns whether `needle` (an ASCII byte, e.g. the quote character) occurs in the file."""
    return scan_text(path, display, encoding, needle)[0]


def scan_text(path: Path, display: str, encoding: str = "utf-8", needle: bytes | None = None) -> tuple[bool, bool]:
    """`check_decodes`, also telling whether the file has a lone '\r' line ending.

    Returns (whether `needle` occurs, whether a '\r' not followed by '\n' occurs). Counting is
    two C-level passes per chunk (`count`), so a large CRLF file costs next to nothing."""
    dec = codecs.getincrementaldecoder(encoding)("strict")
    pos = 0
    found = False
    lone_cr = False
    cr_at_end = False  # the previous chunk ended in '\r': a lone one unless this chunk starts with '\n'
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(CHUNK)
            final = not chunk
            pending = _pending(dec)
            try:
                dec.decode(chunk, final=final)
            except UnicodeDecodeError as exc:
                raise _decode_error(
                    path, display, encoding, max(pos - pending + exc.start, 0), exc.object[exc.start : exc.end]
                ) from None
            if not lone_cr:
                if cr_at_end and not chunk.startswith(b"\n"):
                    lone_cr = True
                n_cr = chunk.count(b"\r")
                if n_cr:
                    cr_at_end = chunk.endswith(b"\r")
                    if n_cr - chunk.count(b"\r\n") - int(cr_at_end) > 0:
                        lone_cr = True
                else:
                    cr_at_end = False
            if final:
                return found, lone_cr
            if needle is not None and not found:
                found = needle in chunk
            pos += len(chunk)


def _high_runs_even(sample: bytes) -> bool:
    """True when every run of bytes >= 0x80 has even length (two-byte CJK characters)."""
    run = 0
    odd = 0
    runs = 0
    for b in sample:
        if b >= 0x80:
            run += 1
        elif run:
            runs += 1
            odd += run % 2
            run = 0
    if run:
        runs += 1
    # No odd run is tolerated in a small sample: a Latin-1 file whose one accented letter is in a
    # header (Patiëntnummer: one byte 0xEB) would otherwise read as GBK (Pati雗tnummer).
    return runs > 0 and odd <= runs // 50


def sniff(path: Path, display: str) -> str:
    """Guess an encoding: a BOM, else UTF-8 if it decodes, else GBK if it looks like it,
    else cp1252/Latin-1. A fallback only: a mapping should declare the encoding."""
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    by_bom = bom_encoding(head)
    if by_bom:
        return by_bom
    dec = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        dec.decode(head, final=len(head) < SNIFF_BYTES)
        # The sample is UTF-8; check the rest too, else fall through.
        if len(head) < SNIFF_BYTES:
            return "utf-8"
        check_decodes(path, display, "utf-8")
        return "utf-8"
    except (UnicodeDecodeError, ReadError):
        pass
    sample = head[: 256 * 1024]
    try:
        sample.decode("gbk")
        gbk_ok = True
    except UnicodeDecodeError as exc:
        # A cut in the middle of a two-byte character at the end of the sample is fine.
        gbk_ok = exc.start >= len(sample) - 1
    if gbk_ok and _high_runs_even(sample):
        return "gbk"
    try:
        head.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


_TMPDIR: tempfile.TemporaryDirectory[str] | None = None
_TMPDIR_LOCK = threading.Lock()


def temp_dir() -> Path:
    """One scratch folder per process, removed at exit. Locked: two submissions read in two
    threads (`ptrh validate A B`) must not each create one, or the one that loses the race is
    garbage-collected, and deleted, under the other thread's files."""
    global _TMPDIR
    with _TMPDIR_LOCK:
        if _TMPDIR is None:
            _TMPDIR = tempfile.TemporaryDirectory(prefix="ptrh-read-")
        return Path(_TMPDIR.name)


def transcode_to_utf8(path: Path, display: str, encoding: str, needle: bytes | None = None,
                      newlines: bool = True) -> tuple[Path, bool]:
    """Decode `path` from `encoding` in chunks into a temporary UTF-8 file.

    With `newlines` every line ending ('\r\n', a lone '\r', '\n') is written as '\n'.
    Returns the file's path (the caller deletes it when done) and whether `needle` occurs in
    the decoded text."""
    found = False
    fd, name = tempfile.mkstemp(suffix=".csv", dir=temp_dir())
    out = Path(name)
    dec = codecs.getincrementaldecoder(encoding)("strict")
    pos = 0
    carry = ""  # a '\r' at the end of a decoded chunk waits for the next one (it may be '\r\n')
    try:
        with os.fdopen(fd, "wb") as dst, path.open("rb") as src:
            first = True
            while True:
                chunk = src.read(CHUNK)
                final = not chunk
                pending = _pending(dec)
                try:
                    text = dec.decode(chunk, final=final)
                except UnicodeDecodeError as exc:
                    raise _decode_error(
                        path, display, encoding, max(pos - pending + exc.start, 0), exc.object[exc.start : exc.end]
                    ) from None
                if first and text.startswith("\ufeff"):
                    text = text[1:]
                first = False if text or not final else first
                if newlines:
                    text = carry + text
                    carry = ""
                    if not final and text.endswith("\r"):
                        carry, text = "\r", text[:-1]
                    if "\r" in text:
                        text = text.replace("\r\n", "\n").replace("\r", "\n")
                data = text.encode("utf-8")
                if needle is not None and not found:
                    found = needle in data
                dst.write(data)
                if final:
                    break
                pos += len(chunk)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return out, found
