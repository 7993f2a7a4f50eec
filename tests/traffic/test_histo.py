"""HDR histogram helpers: encoded histograms from several processes merge exactly."""

from __future__ import annotations

import multiprocessing
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iovkit.errors import InputError
from iovkit.traffic import histo


def _record_in_child(conn, values: list[int]) -> None:
    h = histo.new()
    h.record_many(values)
    conn.send(h.encode())
    conn.close()


def _encoded_from_process(values: list[int]) -> str:
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_record_in_child, args=(child, values))
    proc.start()
    blob = parent.recv()
    proc.join(5)
    return blob


def test_merging_two_processes_equals_one_histogram_of_all_samples() -> None:
    rng = random.Random(7)
    a = [int(rng.lognormvariate(11, 1.2)) for _ in range(20_000)]  # ~60 us median, long tail
    b = [int(rng.lognormvariate(12, 0.8)) for _ in range(15_000)]
    merged = histo.merge_encoded([_encoded_from_process(a), _encoded_from_process(b)])
    whole = histo.new()
    whole.record_many(a + b)
    assert merged.count == len(a) + len(b)
    assert merged.equals(whole)
    for p in (50, 90, 99, 99.9, 100):
        assert merged.value_at_us(p) == whole.value_at_us(p)
    assert merged.percentiles_us() == whole.percentiles_us()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=10**10), max_size=300),
    st.lists(st.integers(min_value=1, max_value=10**10), max_size=300),
)
def test_merge_of_encoded_parts_is_exact(a: list[int], b: list[int]) -> None:
    ha, hb, whole = histo.new(), histo.new(), histo.new()
    ha.record_many(a)
    hb.record_many(b)
    whole.record_many(a + b)
    merged = histo.merge_encoded([ha.encode(), hb.encode()])
    assert merged.count == whole.count
    assert merged.percentiles_us() == whole.percentiles_us()


def test_out_of_range_values_are_counted_not_lost() -> None:
    h = histo.new()
    h.record(5)
    h.record(-10)  # clock noise: counts as the lowest value
    h.record(-10_000_000)  # a clock step: not a latency
    h.record(histo.HIGHEST_NS * 10)
    assert h.count == 2
    assert h.out_of_range == 2


def test_empty_histogram_has_no_percentiles() -> None:
    h = histo.decode(histo.new().encode())
    assert h.count == 0
    assert h.percentiles_us()["p99"] is None


def test_broken_blob_is_one_line_input_error() -> None:
    with pytest.raises(InputError) as exc:
        histo.decode("not-a-histogram", where="steps.0.histogram")
    assert "steps.0.histogram" in str(exc.value)
    assert "\n" not in str(exc.value)


_EDGES = [-5000, -1001, -1000, -1, 0, 1, 2, 2047, 2048, 2049, 60 * 10**9, 60 * 10**9 + 1, 10**12] + [
    2**k + d for k in range(1, 40) for d in (-1, 0, 1)
]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.integers(-3000, 10**7), st.sampled_from(_EDGES)), max_size=300))
def test_bulk_recording_equals_recording_one_by_one(values: list[int]) -> None:
    """The vectorised record_many must give hdrh's exact buckets, min, max and out-of-range count."""
    one, bulk = histo.new(), histo.new()
    for v in values:
        one.record(v)
    bulk.record_many(values)
    assert bulk.count == one.count
    assert bulk.out_of_range == one.out_of_range
    assert bulk.encode() == one.encode()
    assert bulk.equals(one) or one.count == 0
    if one.count:
        assert bulk.percentiles_us() == one.percentiles_us()
