"""The bytes of one metrics record: rows of counts, summed latency and latency histograms.

A record is what one flush of one worker adds to a time bucket, or the sum of many such
records (a merge). Each row is named by a tuple of labels: ``(endpoint, method, class)`` for
an endpoint, ``(class,)`` for the fleet's summary, ``(host, class)`` for a host,
``(host, pid)`` for a worker. A row has a count and a summed latency (µs), and may have a
sparse histogram: (row, bucket index, count) triples (a worker's row uses them for its counts
per status class: bucket ``i`` is ``CLASSES[i]``). Records add up row by row and bucket
by bucket, so a merge of merges is exact, whatever the order.

Bytes: ``HEADER`` (version, flags, row count, triple count, names length), then the body:
the names as JSON, int64 counts, int64 sums (µs), uint16 triples per row (the triples are
grouped by row), then the triples' uint16 bucket and count columns (the count uint32 or
uint64 when a count needs it: ``HITS32``, ``HITS64``). About 4 bytes per histogram bucket;
the records of the long-kept tiers are zlib-compressed after the header (``ZLIB``), to about
1.5. ``ROLLED`` marks a record whose rows a coarser bucket holds too (``compact``).
"""
import functools
import json
import struct
import zlib

import numpy as np

from .histogram import NBUCKETS

CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
CLASS_CODE = {c: i for i, c in enumerate(CLASSES)}
HEADER = struct.Struct("<BBIII")
VERSION = 1
ZLIB, ROLLED, HITS32, HITS64 = 1, 2, 4, 8
#: The dtype of the triples' counts, by flag.
HITS = {0: "<u2", HITS32: "<u4", HITS64: "<u8"}
#: Smaller bodies are kept as they are: zlib saves little there and costs a call per read.
COMPRESS_ABOVE = 2048


class Record:
    """A decoded record: ``names`` (tuples), ``counts``, ``sums`` (µs) and the triples'
    ``rows``, ``buckets`` and ``hits`` columns (numpy integer arrays)."""

    __slots__ = ("names", "counts", "sums", "rows", "buckets", "hits")

    def __init__(self, names, counts, sums, rows, buckets, hits):
        self.names, self.counts, self.sums = names, counts, sums
        self.rows, self.buckets, self.hits = rows, buckets, hits


EMPTY = Record([], *(np.zeros(0, dtype=np.int64) for _ in range(5)))


def group(delta, label, histogram=True):
    """Return ``{label(key): [count, ns, {bucket: n}]}``: the recorder's ``delta`` summed by label."""
    out = {}
    for key, (count, ns, buckets) in delta.items():
        name = label(key)
        row = out.get(name)
        if row is None:
            row = out[name] = [0, 0, {}]
        row[0] += count
        row[1] += ns
        if histogram:
            target = row[2]
            for idx, n in buckets.items():
                target[idx] = target.get(idx, 0) + n
    return out


def encode(rows, compress=False):
    """Return the bytes of a record of ``{name tuple: [count, ns, {bucket: n}]}`` rows."""
    names = list(rows)
    counts = np.fromiter((rows[n][0] for n in names), dtype=np.int64, count=len(names))
    sums = np.fromiter((rows[n][1] // 1000 for n in names), dtype=np.int64, count=len(names))
    runs = np.fromiter((len(rows[n][2]) for n in names), dtype=np.int64, count=len(names))
    buckets, hits = [], []
    for name in names:
        histogram = rows[name][2]
        buckets += histogram.keys()
        hits += histogram.values()
    return _pack(names, counts, sums, runs, np.array(buckets, dtype=np.int64), np.array(hits, dtype=np.int64),
                 compress)


def _pack(names, counts, sums, runs, buckets, hits, compress, rolled=False):
    head = json.dumps(names, separators=(",", ":")).encode()
    top = int(hits.max()) if len(hits) else 0
    width = HITS64 if top >= 2**32 else HITS32 if top >= 2**16 else 0
    body = b"".join((head, counts.astype("<i8").tobytes(), sums.astype("<i8").tobytes(),
                     runs.astype("<u2").tobytes(), buckets.astype("<u2").tobytes(),
                     hits.astype(HITS[width]).tobytes()))
    compress = compress and len(body) > COMPRESS_ABOVE
    flags = width | (ZLIB if compress else 0) | (ROLLED if rolled else 0)
    if compress:
        body = zlib.compress(body, 1)
    return HEADER.pack(VERSION, flags, len(names), len(buckets), len(head)) + body


def rolled(blob):
    """Tell whether a record's rows are held by a coarser bucket too (without decoding it)."""
    return bool(blob[1] & ROLLED)


@functools.lru_cache(maxsize=512)
def _names(head):
    """Return the row names of a JSON head; merged records list them sorted, so the heads of a
    kind's buckets mostly repeat and are parsed once."""
    return [tuple(n) for n in json.loads(head)]


def decode(blob):
    """Return the Record of ``blob``."""
    version, flags, n_rows, n_triples, head_len = HEADER.unpack_from(blob)
    if version != VERSION:
        raise ValueError(f"metrics record version {version} is not {VERSION}")
    body = memoryview(blob)[HEADER.size:]
    if flags & ZLIB:
        body = memoryview(zlib.decompress(body))
    names = _names(bytes(body[:head_len]))
    at = head_len

    def column(dtype, n):
        nonlocal at
        values = np.frombuffer(body, dtype=dtype, count=n, offset=at)
        at += n * values.itemsize
        return values

    counts, sums, runs = column("<i8", n_rows), column("<i8", n_rows), column("<u2", n_rows)
    buckets, hits = column("<u2", n_triples), column(HITS[flags & (HITS32 | HITS64)], n_triples)
    return Record(names, counts, sums, np.repeat(np.arange(n_rows), runs), buckets, hits)


def merge(records):
    """Return the Record that adds up ``records`` row by row (rows keep their names, sorted)."""
    index = dict.fromkeys(sorted({n for record in records for n in record.names}))
    if not index:
        return EMPTY
    for i, name in enumerate(index):
        index[name] = i
    size = len(index)
    gids = [np.fromiter((index[n] for n in record.names), dtype=np.int64, count=len(record.names))
            for record in records]
    gid = np.concatenate(gids)
    counts = np.bincount(gid, weights=np.concatenate([r.counts for r in records]), minlength=size)
    sums = np.bincount(gid, weights=np.concatenate([r.sums for r in records]), minlength=size)
    cells = np.concatenate([g[r.rows] * NBUCKETS + np.minimum(r.buckets, NBUCKETS - 1)
                            for g, r in zip(gids, records)])
    hits = np.concatenate([r.hits for r in records])
    unique, where = np.unique(cells, return_inverse=True)
    summed = np.bincount(where, weights=hits, minlength=len(unique))
    # float64 sums are exact below 2**53: far above any count or µs total a bucket holds
    return Record(list(index), counts.astype(np.int64), sums.astype(np.int64), unique // NBUCKETS,
                  unique % NBUCKETS, summed.astype(np.int64))


def pack(record, compress, rolled=False):
    """Return the bytes of a decoded (merged) Record, whose triples are grouped by row."""
    runs = np.bincount(record.rows, minlength=len(record.names))
    return _pack(record.names, record.counts, record.sums, runs, record.buckets, record.hits, compress, rolled)


def dense(record, row_of, size):
    """Return a dense ``size`` × NBUCKETS histogram matrix of ``record``, row ``i`` going to
    ``row_of[i]`` (an int array; -1 drops the row)."""
    target = row_of[record.rows]
    keep = target >= 0
    cells = target[keep] * NBUCKETS + np.minimum(record.buckets[keep], NBUCKETS - 1)
    return np.bincount(cells, weights=record.hits[keep], minlength=size * NBUCKETS).reshape(size, NBUCKETS)
