"""The bytes of one metrics record: rows of counts, summed latency and latency histograms.

A record is what one flush of one worker adds to a time bucket, or the sum of many such
records (a merge). Each row is named by a tuple of labels: ``(endpoint, method, class)`` for
an endpoint, ``(class,)`` for the fleet's summary, ``(host, class)`` for a host,
``(host, pid, class)`` for a worker. A row has a count and a summed latency (µs), and may have
a sparse histogram: (row, bucket index, count) triples. Records add up row by row and bucket
by bucket, so a merge of merges is exact, whatever the order.

Bytes: ``HEADER`` (version, flags, row count, triple count, names length), then
the body: the names as JSON, int64 counts, int64 sums (µs), then the triples as three
columns: uint32 row, uint16 bucket, uint32 count (uint64 when ``WIDE``). Merges of closed
buckets are zlib-compressed after the header (``ZLIB``): about 1.7 bytes per histogram
bucket. ``ROLLED`` marks a record whose rows a coarser bucket holds too (``compact``).
"""
import json
import struct
import zlib

import numpy as np

from .histogram import NBUCKETS

CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
HEADER = struct.Struct("<BBIII")
VERSION = 1
ZLIB, WIDE, ROLLED = 1, 2, 4


class Record:
    """A decoded record: ``names`` (tuples), ``counts``, ``sums`` (µs) and the triples'
    ``rows``, ``buckets`` and ``hits`` columns (numpy int64 arrays)."""

    __slots__ = ("names", "counts", "sums", "rows", "buckets", "hits")

    def __init__(self, names, counts, sums, rows, buckets, hits):
        self.names, self.counts, self.sums = names, counts, sums
        self.rows, self.buckets, self.hits = rows, buckets, hits

    @property
    def total(self):
        return int(self.counts.sum())


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
    row_ids, buckets, hits = [], [], []
    for i, name in enumerate(names):
        histogram = rows[name][2]
        row_ids += [i] * len(histogram)
        buckets += histogram.keys()
        hits += histogram.values()
    return _pack(names, counts, sums, np.array(row_ids, dtype=np.int64), np.array(buckets, dtype=np.int64),
                 np.array(hits, dtype=np.int64), compress)


def _pack(names, counts, sums, rows, buckets, hits, compress, rolled=False):
    head = json.dumps(names, separators=(",", ":")).encode()
    wide = bool(len(hits)) and int(hits.max()) >= 2**32
    body = b"".join((head, counts.astype("<i8").tobytes(), sums.astype("<i8").tobytes(),
                     rows.astype("<u4").tobytes(), buckets.astype("<u2").tobytes(),
                     hits.astype("<u8" if wide else "<u4").tobytes()))
    flags = (WIDE if wide else 0) | (ZLIB if compress else 0) | (ROLLED if rolled else 0)
    if compress:
        body = zlib.compress(body, 1)
    return HEADER.pack(VERSION, flags, len(names), len(rows), len(head)) + body


def rolled(blob):
    """Tell whether a record's rows are held by a coarser bucket too (without decoding it)."""
    return bool(blob[1] & ROLLED)


def decode(blob, names_cache=None):
    """Return the Record of ``blob``; ``names_cache`` (a dict) saves parsing a names list seen before."""
    version, flags, n_rows, n_triples, head_len = HEADER.unpack_from(blob)
    if version != VERSION:
        raise ValueError(f"metrics record version {version} is not {VERSION}")
    body = memoryview(blob)[HEADER.size:]
    if flags & ZLIB:
        body = memoryview(zlib.decompress(body))
    head = bytes(body[:head_len])
    names = names_cache.get(head) if names_cache is not None else None
    if names is None:
        names = [tuple(n) for n in json.loads(head)]
        if names_cache is not None:
            names_cache[head] = names
    at = head_len

    def column(dtype, n):
        nonlocal at
        values = np.frombuffer(body, dtype=dtype, count=n, offset=at).astype(np.int64)
        at += n * np.dtype(dtype).itemsize
        return values

    counts, sums = column("<i8", n_rows), column("<i8", n_rows)
    rows, buckets = column("<u4", n_triples), column("<u2", n_triples)
    hits = column("<u8" if flags & WIDE else "<u4", n_triples)
    return Record(names, counts, sums, rows, buckets, hits)


def merge(records):
    """Return the Record that adds up ``records`` row by row (rows keep their names)."""
    index = {}
    gids = []
    for record in records:
        gids.append(np.fromiter((index.setdefault(n, len(index)) for n in record.names), dtype=np.int64,
                                count=len(record.names)))
    size = len(index)
    if not size:
        return EMPTY
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


def pack(record, compress=True, rolled=False):
    """Return the bytes of a decoded (merged) Record."""
    return _pack(record.names, record.counts, record.sums, record.rows, record.buckets, record.hits, compress,
                 rolled)


def dense(record, row_of, size):
    """Return a dense ``size`` × NBUCKETS histogram matrix of ``record``, row ``i`` going to
    ``row_of[i]`` (an int array; -1 drops the row)."""
    target = row_of[record.rows]
    keep = target >= 0
    cells = target[keep] * NBUCKETS + np.minimum(record.buckets[keep], NBUCKETS - 1)
    return np.bincount(cells, weights=record.hits[keep], minlength=size * NBUCKETS).reshape(size, NBUCKETS)
