"""The roofline cost model (hand-worked numbers, memory- vs compute-bound regimes) and the latency probe."""

from __future__ import annotations

import pytest

from specdec_lab.bench.costmodel import HARDWARE, Hardware, ModelShape, bytes_moved, flops, forward_time, predicted_speedup, ridge_tokens
from specdec_lab.bench.probe import forward_latency
from specdec_lab.core.theory import speedup

from conftest import tiny_llama

LLAMA_7B = ModelShape.dense(6.7e9, layers=32, width=4096)
H100 = HARDWARE["H100-SXM"]


def test_hand_worked_bytes_and_flops():
    m = ModelShape(params=1000, layers=2, width=8, kv_width=4, bytes_per_number=2)
    assert bytes_moved(m, k=3, context=10) == 1000 * 2 + 2 * 2 * 4 * 13 * 2
    assert flops(m, k=3, context=10) == 2 * 1000 * 3 + 4 * 2 * 8 * 3 * 13
    hw = Hardware("toy", bandwidth=1000.0, peak=1e9, overhead=0.5)
    assert forward_time(m, 3, 10, hw) == pytest.approx(bytes_moved(m, 3, 10) / 1000.0 + 0.5)


def test_a_7b_model_on_a_gpu_verifies_8_tokens_for_the_price_of_one():
    t1, t8 = forward_time(LLAMA_7B, 1, 512, H100), forward_time(LLAMA_7B, 8, 512, H100)
    assert t8 / t1 < 1.01  # memory bound: the weights' traffic dominates
    assert ridge_tokens(LLAMA_7B, H100) == pytest.approx(989e12 * 2 / (2 * 3350e9))
    far = forward_time(LLAMA_7B, 4096, 512, H100)
    assert far == pytest.approx(flops(LLAMA_7B, 4096, 512) / H100.peak + H100.overhead)  # compute bound


def test_predicted_speedup_is_the_theorem_when_verification_is_free():
    drafter = ModelShape.dense(6.8e7, layers=2, width=768)
    s = predicted_speedup(0.8, 4, LLAMA_7B, drafter, H100)
    c = forward_time(drafter, 1, 512, H100) / forward_time(LLAMA_7B, 1, 512, H100)
    assert s == pytest.approx(speedup(0.8, 4, c), rel=0.01)
    assert predicted_speedup(0.8, 4, LLAMA_7B, None, H100, drafter_cost=0.0) == pytest.approx(speedup(0.8, 4, 0.0), rel=0.01)
    with pytest.raises(ValueError, match="drafter_cost"):
        predicted_speedup(0.8, 4, LLAMA_7B, None, H100)


def test_shape_of_a_transformers_model():
    model = tiny_llama(layers=2, hidden=32)  # 4 heads, 2 KV heads: d_kv = 2 · 8
    shape = ModelShape.of(model)
    assert (shape.layers, shape.width, shape.kv_width, shape.bytes_per_number) == (2, 32, 16, 4)
    assert shape.params == sum(p.numel() for p in model.parameters())


def test_forward_latency_probe_times_every_k_and_leaves_the_model_alone():
    model = tiny_llama()
    times = forward_latency(model, ks=(1, 4, 16), context=8, repeats=2)
    assert list(times) == [1, 4, 16] and all(t > 0 for t in times.values())
    with pytest.raises(ValueError, match="every k"):
        forward_latency(model, ks=(0,))
    with pytest.raises(ValueError, match="k >= 1"):
        forward_time(LLAMA_7B, 0, 10, H100)


def test_fit_hardware_reproduces_the_endpoints_of_a_measured_curve():
    from specdec_lab.bench.costmodel import fit_hardware

    m = ModelShape(params=6_000_000, layers=6, width=384, kv_width=384, bytes_per_number=4)
    truth = Hardware("truth", bandwidth=20e9, peak=2e10, overhead=0.01)
    times = {k: forward_time(m, k, 128, truth) for k in (1, 4, 16, 64)}
    fitted = fit_hardware(m, times, 128)
    for k in (1, 64):
        assert forward_time(m, k, 128, fitted) == pytest.approx(times[k], rel=1e-6)
    with pytest.raises(ValueError, match="two k"):
        fit_hardware(m, {1: 0.01}, 128)


def test_fit_hardware_when_even_one_token_is_compute_bound():
    from specdec_lab.bench.costmodel import fit_hardware

    m = ModelShape(params=6_000_000, layers=6, width=384, kv_width=384, bytes_per_number=4)
    truth = Hardware("slow", bandwidth=20e9, peak=2e9, overhead=0.002)  # F(1)/peak = 6 ms > B/bw = 1.2 ms
    times = {k: forward_time(m, k, 16, truth) for k in (1, 8)}
    fitted = fit_hardware(m, times, 16)
    assert [forward_time(m, k, 16, fitted) for k in (1, 8)] == pytest.approx([times[1], times[8]], rel=1e-6)
