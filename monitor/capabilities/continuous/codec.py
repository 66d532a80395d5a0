"""The bytes of one continuous-profile record: folded stacks and how many samples each got.

A record is ``{folded stack: samples}``, a folded stack being its frames, root first, joined
by ``;`` (``sampler``). Its bytes: a version byte and a flags byte (the metrics records'
flags: ``ZLIB``, and ``ROLLED``, which the compactor reads without decoding), then the lines
``stack COUNT``, sorted (Brendan Gregg's collapsed format) and zlib-compressed: a sorted stack
shares most of its frames with the line before, which zlib stores as a short back-reference,
so a distinct stack costs tens of bytes, not the hundreds of its text (docs/profiling.md).

Records add up stack by stack, so a merge of merges is exact. A merge keeps at most
``MAX_STACKS`` stacks: past that the least sampled ones count as ``(other)``, so the totals
stay exact and a bucket's bytes bounded however long it is or however many workers write.
"""
import heapq
import struct
import zlib

from ..metrics.codec import ROLLED, ZLIB

HEADER = struct.Struct("<BB")
VERSION = 1
#: The stack that stands for the stacks past a cap (a worker's per minute, a merge's).
OTHER = "(other)"
#: Most stacks a merged record keeps.
MAX_STACKS = 20_000
LEVEL = 6


def encode(stacks, rolled=False):
    """Return the bytes of a record of ``{folded stack: samples}``."""
    text = "\n".join(f"{stack} {count}" for stack, count in sorted(stacks.items())).encode()
    flags = ZLIB | (ROLLED if rolled else 0)
    return HEADER.pack(VERSION, flags) + zlib.compress(text, LEVEL)


def pack(record, compress=True, rolled=False):
    """Return the bytes of a decoded record; always compressed (folded text shrinks tenfold and more)."""
    return encode(record, rolled)


def rolled(blob):
    """Tell whether a record's stacks are held by a coarser bucket too (without decoding it)."""
    return bool(blob[1] & ROLLED)


def decode(blob):
    """Return the ``{folded stack: samples}`` of ``blob``."""
    version, flags = HEADER.unpack_from(blob)
    if version != VERSION:
        raise ValueError(f"continuous profile record version {version} is not {VERSION}")
    body = memoryview(blob)[HEADER.size:]
    text = (zlib.decompress(body) if flags & ZLIB else bytes(body)).decode()
    out = {}
    for line in text.split("\n") if text else ():
        stack, _, count = line.rpartition(" ")
        out[stack] = int(count)
    return out


def add(into, stacks):
    """Add the counts of ``stacks`` to the mapping ``into``."""
    get = into.get
    for stack, count in stacks.items():
        into[stack] = get(stack, 0) + count


def cap(stacks, most):
    """Return ``stacks`` with at most ``most`` entries: the least sampled ones past it summed as ``(other)``."""
    if len(stacks) <= most:
        return stacks
    kept = dict(heapq.nlargest(most - 1, stacks.items(), key=lambda item: item[1]))
    kept[OTHER] = kept.get(OTHER, 0) + sum(stacks.values()) - sum(kept.values())
    return kept


def merge(records):
    """Return the record that adds up ``records``, capped at ``MAX_STACKS`` stacks."""
    out = {}
    for record in records:
        add(out, record)
    return cap(out, MAX_STACKS)
