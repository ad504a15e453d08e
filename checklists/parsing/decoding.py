"""Bytes to text: size limits, encodings, binary files refused in words, mojibake repaired."""

from __future__ import annotations

import codecs
import re

import ftfy

from checklists.parsing.model import RunbookImportError
from checklists.vocabulary import MOJIBAKE_HINT_RE

DEFAULT_MAX_BYTES = 5 * 1024 * 1024


_MB = 1024 * 1024


_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


_NUL_MESSAGE = "The file looks binary (it contains NUL bytes); upload a Markdown (.md) text file."


_CONTROL_MESSAGE = "The file looks binary (it is mostly control characters); upload a Markdown (.md) text file."


_DECLARED_CHARSET_RE = re.compile(rb"""(?:charset|encoding|coding)\s*[:=]\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def _decode(data: bytes | str, max_bytes: int) -> str:
    """Bytes or text to normalised text (LF line ends), or a RunbookImportError saying why not."""
    if isinstance(data, str):
        raw = data.encode("utf-8", "surrogatepass")
        _check_size(len(raw), max_bytes)
        # Lone surrogates cannot be stored or rendered; replace them like any undecodable byte.
        text = raw.decode("utf-8", "replace").removeprefix("\ufeff")
    else:
        _check_size(len(data), max_bytes)
        text = _decode_bytes(bytes(data))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise RunbookImportError("The file is empty.")
    nul = text.find("\x00")
    if nul >= 0:
        raise RunbookImportError(_NUL_MESSAGE, text.count("\n", 0, nul) + 1)
    if (len(text) - len(_CONTROL_RE.sub("", text))) * 10 > len(text) * 3:
        raise RunbookImportError(_CONTROL_MESSAGE)
    return text


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise RunbookImportError(f"The file is larger than the {max_bytes / _MB:g} MB limit ({size:,} bytes).")


def _decode_bytes(data: bytes) -> str:
    """UTF-8 (or UTF-16/32 with a BOM), else a declared charset, else Windows-1252, else Latin-1.

    Whether the result looks like text at all is checked by the caller.
    """
    for bom, codec in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16")):  # fmt: skip
        if data.startswith(bom):
            return _decode_declared(data, codec, codec.upper())
    nul = data.find(b"\x00")
    if nul >= 0:  # before guessing an encoding: images and archives are full of NULs
        raise RunbookImportError(_NUL_MESSAGE, data.count(b"\n", 0, nul) + 1)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    declared = _DECLARED_CHARSET_RE.search(data[:4096])
    if declared:
        name = declared.group(1).decode("ascii")
        try:
            codec = codecs.lookup(name).name
        except LookupError:
            codec = None
        if codec is not None:
            return _decode_declared(data, codec, name)
    # Undeclared legacy text: Windows-1252 is what editors produce; Latin-1 decodes anything else.
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _decode_declared(data: bytes, codec: str, name: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as error:
        raise RunbookImportError(
            f"The file says it is encoded as {name}, but byte 0x{data[error.start]:02x} is not valid {name}; "
            "save it as UTF-8 and upload it again.",
            data.count(b"\n", 0, error.start) + 1,
        ) from None


def _repair_mojibake(text: str) -> tuple[str, list[dict]]:
    """UTF-8 that was once read as Windows-1252 ("âœ…", "ðŸš€") put right by ftfy, line by line.

    Only lines showing a tell-tale pair are handed to ftfy, so clean files cost one regex scan.
    """
    if not MOJIBAKE_HINT_RE.search(text):
        return text, []
    lines = text.split("\n")
    repairs = []
    for index, line in enumerate(lines):
        if MOJIBAKE_HINT_RE.search(line):
            fixed = ftfy.fix_text(line, normalization=None, fix_line_breaks=False, uncurl_quotes=False)
            if fixed != line:
                lines[index] = fixed
                repairs.append({"line": index + 1, "was": line.strip()[:200], "now": fixed.strip()[:200]})
    return "\n".join(lines), repairs
