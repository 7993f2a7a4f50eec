"""HDR latency histograms: one layout everywhere, so histograms from any process or machine merge exactly.

Why one fixed layout: `HdrHistogram.add` is exact (bucket counts are summed) only when both sides share
range and precision; averaging percentiles across processes is wrong. Every iovkit histogram records
integer nanoseconds from 1 ns to 60 s at 3 significant figures, and travels as the compressed base64
"histoblob" (`encode()`), which is what the result JSON stores.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from hdrh.histogram import HdrHistogram

from iovkit.errors import InputError

LOWEST_NS = 1
HIGHEST_NS = 60 * 1_000_000_000
SIGNIFICANT_FIGURES = 3
PERCENTILES: tuple[float, ...] = (50.0, 90.0, 99.0, 99.9)


class LatencyHistogram:
    """An HdrHistogram of latencies in ns that also counts what it could not record.

    hdrh's `record_value` silently returns False for a value out of range; a latency above 60 s (or a
    negative one, from a clock step) must not vanish, so those are counted in `out_of_range`.
    """

    __slots__ = ("hist", "out_of_range")

    def __init__(self, hist: HdrHistogram | None = None) -> None:
        self.hist = hist if hist is not None else HdrHistogram(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_FIGURES)
        self.out_of_range = 0

    def record(self, value_ns: int, count: int = 1) -> None:
        """Record one latency; values below 1 ns are clamped to 1 ns (same-tick arrival), above 60 s counted."""
        v = int(value_ns)
        if v < LOWEST_NS:
            if v < -1000:  # more than clock noise: a clock step, not a latency
                self.out_of_range += count
                return
            v = LOWEST_NS
        if not self.hist.record_value(v, count):
            self.out_of_range += count

    def record_many(self, values_ns: Iterable[int]) -> None:
        """Record every value; the same histogram as record() on each, in one vectorised pass.

        Why: hdrh's record_value is pure Python (about 2 us a value), which made a 300,000-datagram step spend
        most of a second after the run just filling the histogram. Here numpy computes hdrh's own bucket index
        for all values at once (same formula: bucket from the bit length of value | sub_bucket_mask, then the
        sub-bucket), counts per bucket, and adds the counts; min and max take the exact values, as hdrh does.
        """
        arr = np.asarray(values_ns if isinstance(values_ns, np.ndarray) else list(values_ns), dtype=np.int64)
        if arr.size == 0:
            return
        h = self.hist
        low = arr < LOWEST_NS
        if low.any():
            step = arr < -1000  # more than clock noise: a clock step, not a latency
            self.out_of_range += int(step.sum())
            arr = np.where(low, LOWEST_NS, arr)[~step]
            if arr.size == 0:
                return
        unit, half_mag = h.unit_magnitude, h.sub_bucket_half_count_magnitude
        bitlen = np.frexp((arr | h.sub_bucket_mask).astype(np.float64))[1].astype(np.int64)  # exact below 2**53
        bucket = bitlen - unit - (half_mag + 1)
        index = ((bucket + 1) << half_mag) + (arr >> (bucket + unit)) - h.sub_bucket_half_count
        ok = index < h.counts_len
        if not ok.all():
            self.out_of_range += int((~ok).sum())
            arr, index = arr[ok], index[ok]
            if arr.size == 0:
                return
        found = np.bincount(index, minlength=h.counts_len).astype(np.uint64)
        try:
            np.ctypeslib.as_array(h.counts)[:] += found  # hdrh keeps its counts in a ctypes array: add in place
        except (TypeError, ValueError, AttributeError):  # another counts container: one bucket at a time
            for i in np.flatnonzero(found).tolist():
                h.counts[i] += int(found[i])
        h.total_count += int(arr.size)
        h.min_value = min(h.min_value, int(arr.min()))
        h.max_value = max(h.max_value, int(arr.max()))

    @property
    def count(self) -> int:
        return int(self.hist.get_total_count())

    def merge(self, other: LatencyHistogram) -> None:
        """Add other's counts to this one (exact: same layout)."""
        if other.count:
            self.hist.add(other.hist)
        self.out_of_range += other.out_of_range

    def encode(self) -> str:
        """The compressed base64 histoblob (ASCII)."""
        return encode(self)

    def percentiles_us(self, percentiles: Iterable[float] = PERCENTILES) -> dict[str, float | None]:
        """p50/p90/... and max in microseconds; None when nothing was recorded."""
        keys = [f"p{_fmt(p)}" for p in percentiles] + ["max"]
        if self.count == 0:
            return dict.fromkeys(keys)
        vals = self.hist.get_percentile_to_value_dict(list(percentiles))
        result: dict[str, float | None] = {f"p{_fmt(p)}": round(vals[p] / 1000.0, 3) for p in percentiles}
        result["max"] = round(self.hist.get_max_value() / 1000.0, 3)
        return result

    def value_at_us(self, percentile: float) -> float | None:
        if self.count == 0:
            return None
        return float(self.hist.get_value_at_percentile(percentile)) / 1000.0

    def mean_us(self) -> float | None:
        return None if self.count == 0 else float(self.hist.get_mean_value()) / 1000.0

    def equals(self, other: LatencyHistogram) -> bool:
        """Same bucket counts (exact equality of the recorded distribution)."""
        return bool(self.hist.equals(other.hist)) and self.count == other.count


def _fmt(p: float) -> str:
    return str(int(p)) if float(p).is_integer() else str(p)


def new() -> LatencyHistogram:
    return LatencyHistogram()


def encode(h: LatencyHistogram) -> str:
    """Histoblob text for JSON (empty histograms too: they decode to empty)."""
    return bytes(h.hist.encode()).decode("ascii")


def decode(blob: str, *, where: str | None = None) -> LatencyHistogram:
    """A histogram from its histoblob; a broken blob is an InputError naming `where`."""
    try:
        hist = HdrHistogram.decode(blob.encode("ascii"))
    except Exception as err:  # hdrh raises several kinds (zlib.error, ValueError, HdrCookieException...)
        raise InputError(f"not a valid encoded HDR histogram ({type(err).__name__})", field=where) from err
    if (hist.lowest_trackable_value, hist.highest_trackable_value, hist.significant_figures) != (
        LOWEST_NS,
        HIGHEST_NS,
        SIGNIFICANT_FIGURES,
    ):
        # Another layout still merges if it fits; re-record bucket by bucket to keep one layout.
        fixed = LatencyHistogram()
        for item in hist.get_recorded_iterator():
            fixed.record(item.value_iterated_to, item.count_at_value_iterated_to)
        return fixed
    return LatencyHistogram(hist)


def merge_encoded(blobs: Iterable[str], *, where: str | None = None) -> LatencyHistogram:
    """One histogram holding every sample of all the encoded histograms (exact)."""
    total = LatencyHistogram()
    for blob in blobs:
        total.merge(decode(blob, where=where))
    return total
