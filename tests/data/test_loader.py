"""The input loader machinery (uniembed.data.loader): key order, one thread per worker, errors, RNG untouched."""
import pytest
import torch

from uniembed.data.loader import LoaderSettings, batches_of, pin, prepared


def _square(key):
    return key * key, torch.get_num_threads()


def _fails_on_three(key):
    if key == 3:
        raise ValueError("key 3 cannot be prepared")
    return key


@pytest.mark.parametrize("workers", [0, 2])
def test_items_come_back_in_key_order_for_any_worker_count(workers):
    before = torch.get_num_threads()
    torch.set_num_threads(2)   # the main process on two: a worker must still run one
    try:
        out = list(prepared(_square, list(range(9)), LoaderSettings(workers=workers, prefetch_factor=1)))
    finally:
        torch.set_num_threads(before)
    assert [value for value, _ in out] == [k * k for k in range(9)]
    if workers:
        assert {threads for _, threads in out} == {1}   # a worker runs one torch thread


def test_a_worker_error_reaches_the_caller():
    with pytest.raises(ValueError, match="key 3 cannot be prepared"):
        list(prepared(_fails_on_three, list(range(6)), LoaderSettings(workers=2)))


def test_opening_a_loader_leaves_the_global_torch_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    list(prepared(_square, [1, 2], LoaderSettings(workers=0)))
    list(prepared(_square, [1, 2], LoaderSettings(workers=2)))
    assert torch.equal(torch.rand(3), expected)


def test_no_keys_and_more_workers_than_keys():
    assert list(prepared(_square, [], LoaderSettings(workers=2))) == []
    assert [v for v, _ in prepared(_square, [5], LoaderSettings(workers=4))] == [25]


def test_batches_of_cuts_positions_in_order():
    assert [list(b) for b in batches_of(3, 7)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert batches_of(4, 0) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned memory needs a CUDA device")
def test_pin_reaches_every_tensor():
    pinned = pin({"a": torch.ones(2), "b": [torch.zeros(1), ("x", torch.ones(1))]})
    assert pinned["a"].is_pinned() and pinned["b"][0].is_pinned() and pinned["b"][1][1].is_pinned()
