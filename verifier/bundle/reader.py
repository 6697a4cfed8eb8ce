"""Reading a bundle's zip: bounded member reads and the guards against hostile zips.

A bundle is untrusted input. Before a byte is inflated the reader refuses what a bundle
never holds (encrypted members, other compression methods, compressed attachment files,
members over their bound, members that overlap: the "non-recursive" zip bomb); every read
after that is bounded (``verifier.bundle.format`` holds the bounds). Stored members of a
bundle on disk are hashed straight from the file, without zipfile's CRC-32 pass.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from verifier.bundle.format import (
    DEFAULT_LIMITS,
    FILES_PREFIX,
    MAX_RECORD_LINE,
    OPENINGS,
    PROOFS,
    READ_BLOCK,
    RECORDS,
    BundleFormatError,
    Limits,
)
from verifier.chunks import ChunkTree

#: What reading a damaged member raises (bad CRC, bad deflate stream, cut short), or a
#: member refused unread (:meth:`BundleZip.refusal`).
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError)
#: The compression methods a bundle uses (docs/bundle-format.md).
METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


class BundleZip:
    """A zip opened for reading, with a fast raw path for stored members of a file on disk."""

    def __init__(
        self, source: str | os.PathLike[str] | IO[bytes] | bytes, limits: Limits = DEFAULT_LIMITS
    ) -> None:
        self.limits = limits
        self.path: Path | None = None
        self._own: IO[bytes] | None = None
        if isinstance(source, bytes):
            fileobj: IO[bytes] = io.BytesIO(source)
        elif isinstance(source, str | os.PathLike):
            self.path = Path(source)
            try:
                fileobj = self._own = open(self.path, "rb")
            except OSError as e:
                raise BundleFormatError(f"cannot open {self.path}: {e.strerror}") from None
        else:
            fileobj = source
        try:
            self.zf = zipfile.ZipFile(fileobj)
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            if self._own is not None:
                self._own.close()
            raise BundleFormatError(f"not a zip file: {e}") from None
        infos = self.zf.infolist()
        if len(infos) > limits.members:
            self.close()
            raise BundleFormatError(f"bundle has more than {limits.members} members")
        # Members lie side by side in the zip, so their compressed sizes add up to less than
        # the zip: more means overlapping members, the "non-recursive" zip bomb, where every
        # member reuses the same bytes (or a damaged central directory).
        length = stream_length(fileobj)
        if length is not None and sum(i.compress_size for i in infos) > length:
            self.close()
            raise BundleFormatError(
                "the members' sizes add up to more than the zip: they overlap (a zip bomb?)"
            )
        inflated = sum(i.file_size for i in infos if not i.filename.startswith(FILES_PREFIX))
        if inflated > limits.inflated_bytes:
            self.close()
            raise BundleFormatError(
                f"the members other than files/ expand to {inflated} bytes, more than "
                f"{limits.inflated_bytes}"
            )
        self.members: dict[str, zipfile.ZipInfo] = {}
        self.duplicates: list[str] = []
        for info in infos:
            if info.filename in self.members:
                self.duplicates.append(info.filename)
            self.members[info.filename] = info

    def close(self) -> None:
        self.zf.close()
        if self._own is not None:
            self._own.close()

    def refusal(self, info: zipfile.ZipInfo) -> str | None:
        """Why the member is not read at all, or None: what a bundle never holds.

        Encrypted members and other compression methods than the format's; attachment
        files compressed (the format stores them, so their size is their size in the
        zip: no bomb); other members larger than the bound of their kind.
        """
        if info.flag_bits & 1:
            return "is encrypted"
        if info.compress_type not in METHODS:
            return f"uses compression method {info.compress_type}, which bundles do not use"
        if info.filename.startswith(FILES_PREFIX):
            if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
                return "is compressed; attachment files are stored uncompressed"
            return None
        large = (RECORDS, PROOFS, OPENINGS)  # a line per record
        bound = self.limits.records_bytes if info.filename in large else self.limits.small_member
        if info.file_size > bound:
            return f"is larger than {bound} bytes"
        return None

    def read_small(self, name: str) -> bytes:
        info = self.members.get(name)
        if info is None:
            raise KeyError(name)
        bound = self.limits.small_member
        if info.file_size > bound:
            raise BundleFormatError(f"{name} is larger than {bound} bytes")
        try:
            with self.open(name) as f:
                return f.read(bound + 1)
        except ZIP_ERRORS as e:
            raise BundleFormatError(f"{name} cannot be read: {e}") from None

    def open(self, name: str) -> IO[bytes]:
        """The member's bytes, inflated; BundleFormatError for a member :meth:`refusal` refuses."""
        info = self.members[name]
        why = self.refusal(info)
        if why is not None:
            raise BundleFormatError(f"{name} {why}")
        return self.zf.open(info)

    def raw_range(self, info: zipfile.ZipInfo) -> tuple[int, int] | None:
        """(offset, length) of a stored, unencrypted member's bytes in the file (APPNOTE 4.3.7).

        Reading that range directly skips zipfile's CRC-32 pass: the SHA-256 the verifier
        computes anyway is the stronger check, and hashing once is what keeps it fast.
        """
        if self.path is None or info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 1:
            return None
        with open(self.path, "rb") as f:
            f.seek(info.header_offset)
            local = f.read(30)
            if len(local) != 30 or local[:4] != b"PK\x03\x04":
                raise BundleFormatError(f"{info.filename}: bad local header")
            n, m = struct.unpack("<HH", local[26:30])
            name = f.read(n)
        if name.decode("utf-8", "replace") != info.filename and name != info.filename.encode(
            "cp437", "replace"
        ):
            raise BundleFormatError(f"{info.filename}: local header names another file")
        return info.header_offset + 30 + n + m, info.file_size


def stream_length(f: IO[bytes]) -> int | None:
    """The size of a seekable file, or None."""
    try:
        here = f.tell()
        end = f.seek(0, os.SEEK_END)
        f.seek(here)
    except (OSError, ValueError, AttributeError):
        return None
    return end


def blocks_from_range(path: Path, offset: int, length: int) -> Iterator[memoryview]:
    """The bytes [offset, offset + length) of a file, through its own handle and buffer."""
    buf = bytearray(READ_BLOCK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        f.seek(offset)
        done = 0
        while done < length:
            n = f.readinto(view[: min(READ_BLOCK, length - done)])
            if not n:
                raise BundleFormatError("bundle file ends inside a member")
            yield view[:n]
            done += n


def blocks_from_stream(f: IO[bytes]) -> Iterator[memoryview]:
    buf = bytearray(READ_BLOCK)
    view = memoryview(buf)
    while True:
        n = f.readinto(view)  # type: ignore[attr-defined]
        if not n:
            return
        yield view[:n]


def read_lines(f: IO[bytes]) -> Iterator[bytes | None]:
    """Lines without their newline; None for a line longer than the bound (skipped)."""
    while True:
        line = f.readline(MAX_RECORD_LINE + 1)
        if not line:
            return
        if not line.endswith(b"\n"):
            if len(line) > MAX_RECORD_LINE:
                # Skip the rest of the overlong line.
                while line and not line.endswith(b"\n"):
                    line = f.readline(MAX_RECORD_LINE)
                yield None
                continue
            yield line
            return
        yield line[:-1]


def hash_stream(f: IO[bytes]) -> str:
    h = hashlib.sha256()
    with f:
        for b in blocks_from_stream(f):
            h.update(b)
    return h.hexdigest()


def digest_blocks(blocks: Iterator[memoryview]) -> tuple[str, int, str]:
    """SHA-256 (hex), size and chunk root (base64) of a file's bytes, in one pass."""
    tree = ChunkTree()
    for b in blocks:
        tree.update(bytes(b))
    digest, size, root, _count = tree.finish()
    return digest.hex(), size, base64.b64encode(root).decode()
