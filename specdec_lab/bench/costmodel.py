"""A roofline estimate of one forward pass, and the speedup it implies on hardware you may not have.

One forward over k new tokens with a KV cache of n tokens must (Williams et al. 2009's roofline):

    move   B(k) = P·b + 2·L·d_kv·(n + k)·b    bytes  (every weight once; the cache, K and V, per layer)
    do     F(k) = 2·P·k + 4·L·d·k·(n + k)      FLOPs  (a multiply-add per weight per token; attention scores and sums)

    t(k) = max(B(k) / bandwidth, F(k) / peak) + overhead

with P parameters, b bytes per number, L layers, d the model width and d_kv the width of one
token's keys (= values). At small k the first term wins (memory bound), so t(k) barely grows
with k until k ≈ peak·b / (2·bandwidth) tokens (the ridge point): this is why verifying γ + 1
tokens costs about one forward. ``overhead`` is the fixed cost per call (kernel launches,
Python, framework), which dominates for tiny models on a CPU.

From t the speculative speedup follows with c = t_drafter(1) / t_target(1) and
v = t_target(γ + 1) / t_target(1):  S = (1 − α^(γ+1)) / ((1 − α)(γc + v)).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.theory import speedup


@dataclass(frozen=True)
class Hardware:
    name: str
    bandwidth: float  # bytes/s of memory bandwidth
    peak: float  # FLOP/s at the precision used (dense, no sparsity)
    overhead: float = 0.0  # seconds per forward call, independent of size
    note: str = ""


GB, TFLOP = 1e9, 1e12
HARDWARE = {h.name: h for h in [  # public spec sheets; bf16/fp16 dense tensor-core peaks for GPUs
    Hardware("A100-80GB", 2039 * GB, 312 * TFLOP, 2e-5, "SXM, HBM2e; bf16 dense"),
    Hardware("H100-SXM", 3350 * GB, 989 * TFLOP, 2e-5, "HBM3; bf16 dense"),
    Hardware("RTX 3090", 936 * GB, 71 * TFLOP, 2e-5, "GDDR6X; fp16 tensor, fp32 accumulate"),
    Hardware("RTX 4090", 1008 * GB, 165 * TFLOP, 2e-5, "GDDR6X; fp16 tensor, fp32 accumulate"),
    Hardware("laptop CPU", 50 * GB, 0.5 * TFLOP, 1e-3, "DDR5 dual channel, 8 cores AVX2 fp32; PyTorch eager overhead"),
]}


@dataclass(frozen=True)
class ModelShape:
    params: int  # P
    layers: int  # L
    width: int  # d
    kv_width: int  # d_kv: key (= value) numbers per token per layer
    bytes_per_number: int = 2  # b: 2 for fp16/bf16, 4 for fp32

    @staticmethod
    def of(model, bytes_per_number: int | None = None) -> "ModelShape":
        """The shape of a transformers model (its config and parameter count)."""
        cfg = model.config
        layers = getattr(cfg, "num_hidden_layers", None) or cfg.n_layer
        width = getattr(cfg, "hidden_size", None) or cfg.n_embd
        heads = getattr(cfg, "num_attention_heads", None) or cfg.n_head
        kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
        head_dim = getattr(cfg, "head_dim", None) or width // heads
        b = bytes_per_number or next(model.parameters()).element_size()
        return ModelShape(sum(p.numel() for p in model.parameters()), layers, width, kv_heads * head_dim, b)

    @staticmethod
    def dense(params: float, layers: int, width: int, kv_width: int | None = None, bytes_per_number: int = 2) -> "ModelShape":
        """A model by its headline numbers (e.g. 7e9 parameters, 32 layers, width 4096)."""
        return ModelShape(int(params), layers, width, kv_width or width, bytes_per_number)


def bytes_moved(m: ModelShape, k: int, context: int) -> float:
    return m.params * m.bytes_per_number + 2 * m.layers * m.kv_width * (context + k) * m.bytes_per_number


def flops(m: ModelShape, k: int, context: int) -> float:
    return 2 * m.params * k + 4 * m.layers * m.width * k * (context + k)


def forward_time(m: ModelShape, k: int, context: int, hw: Hardware) -> float:
    """Seconds for one forward over ``k`` new tokens after ``context`` cached ones: the roofline plus overhead."""
    if k < 1 or context < 0:
        raise ValueError(f"need k >= 1 and context >= 0, got k={k}, context={context}")
    return max(bytes_moved(m, k, context) / hw.bandwidth, flops(m, k, context) / hw.peak) + hw.overhead


def ridge_tokens(m: ModelShape, hw: Hardware) -> float:
    """k where compute starts to dominate the weights' traffic: peak·b / (2·bandwidth)."""
    return hw.peak * m.bytes_per_number / (2 * hw.bandwidth)


def fit_hardware(m: ModelShape, times: dict[int, float], context: int, bandwidth: float = 20 * GB,
                 name: str = "this device (fitted)") -> Hardware:
    """A Hardware that reproduces measured forward times {k: seconds} at the smallest and largest k.

    The bandwidth is taken as given. If the smallest k is memory bound, the overhead is
    o = t(k_min) − B(k_min)/bandwidth and peak = F(k_max) / (t(k_max) − o); if that peak would
    make k_min compute bound too, both ends are: peak = ΔF / Δt and o = t(k_min) − F(k_min)/peak.
    """
    k_lo, k_hi = min(times), max(times)
    if k_hi == k_lo or times[k_hi] <= times[k_lo]:
        raise ValueError("need times for at least two k, growing with k, to fit a peak")
    note = "fitted to measured forward times"
    overhead = max(times[k_lo] - bytes_moved(m, k_lo, context) / bandwidth, 0.0)
    busy = max(times[k_hi] - overhead, bytes_moved(m, k_hi, context) / bandwidth)
    peak = flops(m, k_hi, context) / busy
    if flops(m, k_lo, context) / peak > bytes_moved(m, k_lo, context) / bandwidth:  # k_min is compute bound too
        peak = (flops(m, k_hi, context) - flops(m, k_lo, context)) / (times[k_hi] - times[k_lo])
        overhead = max(times[k_lo] - flops(m, k_lo, context) / peak, 0.0)
    return Hardware(name, bandwidth, peak, overhead, note)


def predicted_speedup(alpha: float, gamma: int, target: ModelShape, drafter: ModelShape | None, hw: Hardware,
                      context: int = 512, drafter_cost: float | None = None) -> float:
    """The speedup the roofline predicts: c and v from forward_time (or ``drafter_cost`` = c for model-free drafters)."""
    t1 = forward_time(target, 1, context, hw)
    c = drafter_cost if drafter is None else forward_time(drafter, 1, context, hw) / t1
    if c is None:
        raise ValueError("give a drafter shape or drafter_cost (c) for a drafter without a model")
    v = forward_time(target, gamma + 1, context, hw) / t1
    return speedup(alpha, gamma, c, v)
