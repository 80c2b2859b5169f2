#!/usr/bin/env python3
"""Golden fixtures for the tiny Gemma models, made by the reference implementation (HF transformers).

Builds tiny_gemma{1,2,3} (include/gemmaforge/model/tiny.hpp) and the test-only descriptors of
tests/support/test_models.hpp as random HF models, saves their weights (f32, and for the three
generations' tiny models a bf16 copy) and records what HF computes from them: the logits at every position
of a fixed 32-token sequence, the hidden state after every layer, and a greedy continuation.
Deterministic (fixed seeds, one CPU thread). Run from the repository root:

    python3 tools/make_golden.py                # writes tests/golden/tiny_gemma{1,2,3}{,_bf16}/
    python3 tools/make_golden.py --check        # regenerates in memory and compares to the files
    python3 tools/make_golden.py --only KEY     # one fixture (e.g. tiny_gemma3_gqa), with --check too

tests/golden/README.md describes the files and the reference semantics they pin down.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import safetensors
import torch
import transformers
from transformers import (
    Gemma2Config,
    Gemma2ForCausalLM,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GemmaConfig,
    GemmaForCausalLM,
)

FORMAT_VERSION = 1
VOCAB, HIDDEN, FFN, HEADS, HEAD_DIM, MAX_POS = 512, 64, 128, 4, 16, 256
BOS, EOS, PAD = 2, 1, 0
SEQ_LEN = 32          # > window 8: the sliding-window masks cut in from position 8 on
GREEDY_PROMPT = 8     # the greedy prompt is the first 8 ids of the sequence
GREEDY_NEW = 16       # prompt + continuation = 24 positions, 3 windows
# C++ tests compare logits with max |ours - HF| <= REL_TOL * (max - min of the HF logits).
REL_TOL = 1e-4

COMMON = dict(
    vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=FFN, num_attention_heads=HEADS,
    head_dim=HEAD_DIM, max_position_embeddings=MAX_POS, rms_norm_eps=1e-6, bos_token_id=BOS,
    eos_token_id=EOS, pad_token_id=PAD, tie_word_embeddings=True, attention_bias=False,
)


# ---- the three descriptors as HF configs -----------------------------------------------------------
def gemma1_config(**over):
    kw = dict(COMMON, num_hidden_layers=2, num_key_value_heads=1, hidden_act="gelu_pytorch_tanh",
              rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    kw.update(over)
    return GemmaConfig(**kw)


def gemma2_config(**over):
    # tiny.hpp: interleaved_layers<4, 8, 2>: layer i global iff (i + 1) % 2 == 0, so 0 and 2 are local.
    kw = dict(COMMON, num_hidden_layers=4, num_key_value_heads=2, hidden_activation="gelu_pytorch_tanh",
              rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
              query_pre_attn_scalar=16, sliding_window=8,
              layer_types=["sliding_attention", "full_attention"] * 2,
              attn_logit_softcapping=50.0, final_logit_softcapping=30.0)
    kw.update(over)
    return Gemma2Config(**kw)


def gemma3_config(**over):
    # tiny.hpp: interleaved_layers<6, 8, 6>: only layer 5 is global; θ 1e6 global, 1e4 local.
    kw = dict(COMMON, num_hidden_layers=6, num_key_value_heads=1, hidden_activation="gelu_pytorch_tanh",
              rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1e6},
                               "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}},
              query_pre_attn_scalar=16, sliding_window=8,
              layer_types=["sliding_attention"] * 5 + ["full_attention"],
              attn_logit_softcapping=None, final_logit_softcapping=None)
    kw.update(over)
    return Gemma3TextConfig(**kw)


def gemma3_gqa_config(**over):
    # tests/support/test_models.hpp: interleaved_layers<5, 8, 3> (layer 2 global), 8 heads over 2 KV heads.
    kw = dict(num_hidden_layers=5, num_attention_heads=8, num_key_value_heads=2,
              layer_types=["sliding_attention"] * 2 + ["full_attention"] + ["sliding_attention"] * 2)
    kw.update(over)
    return gemma3_config(**kw)


# Weight scales per model. HF's init (N(0, 0.02), norms w = 0) gives near-constant logits and
# (1 + w) = 1, which would let a wrong norm or a missing softcap pass. Ours:
#   emb        std of the embedding; logits ~ 8 * emb * |final gain| per unit of normed hidden
#   qk         gain of q/k projections (std qk / sqrt(fan_in)): sharpness of attention; Gemma 2 gets
#              scores well into its softcap of 50
#   out        gain of o_proj and down_proj (Gemma 1 has no post norms to scale its sublayers)
#   post_mean  mean of w in the norms whose output is added to the residual stream (Gemma 2/3:
#              post_attention/post_feedforward; Gemma 1: post_attention_layernorm, its pre-MLP
#              norm), so that the layers outweigh the token's own embedding in the stream: with
#              a tied head the embedding alone makes a model that repeats its input token
#   final_mean mean of w in the final norm: sets the logit spread
# Every other norm weight (incl. Gemma 3's q_norm/k_norm) is N(0, 0.5), every other matrix
# N(0, 1 / fan_in). Seeds and scales were picked (see README) for varied greedy outputs with
# clear top-1/top-2 gaps and a small f32-vs-f64 error.
MODELS = [
    # key, name, HF class, config, seed, scales
    ("tiny_gemma1", "tiny-gemma1", GemmaForCausalLM, gemma1_config, 101,
     dict(emb=0.45, qk=1.5, out=3.0, post_mean=2.0, final_mean=1.0)),
    ("tiny_gemma2", "tiny-gemma2", Gemma2ForCausalLM, gemma2_config, 132,
     dict(emb=0.3, qk=2.5, out=1.0, post_mean=3.0, final_mean=3.0)),
    ("tiny_gemma3", "tiny-gemma3", Gemma3ForCausalLM, gemma3_config, 103,
     dict(emb=0.45, qk=1.0, out=1.0, post_mean=3.0, final_mean=1.0)),
    # Test-only descriptors (tests/support/test_models.hpp): f32 weights only.
    ("tiny_gemma3_gqa", "tiny-gemma3-gqa", Gemma3ForCausalLM, gemma3_gqa_config, 109,
     dict(emb=0.3, qk=1.0, out=1.0, post_mean=3.0, final_mean=2.0)),
]
WITH_BF16 = {"tiny_gemma1", "tiny_gemma2", "tiny_gemma3"}


def build(cls, config):
    config._attn_implementation = "eager"  # reference math: softcap, masks and windows as written
    torch.manual_seed(0)
    model = cls(config).eval()
    return model


def randomize(model, seed: int, scales: dict):
    """Overwrites every parameter from a seeded generator, in named_parameters order."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "lm_head.weight":
                continue  # tied to the embedding
            mean = 0.0
            if name.endswith("embed_tokens.weight"):
                std = scales["emb"]
            elif name == "model.norm.weight":
                std, mean = 0.5, scales["final_mean"]
            elif name.endswith(("post_attention_layernorm.weight", "post_feedforward_layernorm.weight")):
                std, mean = 0.5, scales["post_mean"]
            elif "norm" in name:
                std = 0.5
            elif name.endswith(("q_proj.weight", "k_proj.weight")):
                std = scales["qk"] / math.sqrt(p.shape[1])
            elif name.endswith(("o_proj.weight", "down_proj.weight")):
                std = scales["out"] / math.sqrt(p.shape[1])
            else:
                std = 1.0 / math.sqrt(p.shape[1])
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float32) * std + mean)
    if model.config.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def round_to_bf16(model):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).to(torch.float32))


# ---- reference computations ------------------------------------------------------------------------
def forward_logits(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        out = model(torch.tensor([ids]), use_cache=False)
    return out.logits[0]


def hidden_states(model, ids: list[int]) -> torch.Tensor:
    """[layers + 1][T][hidden]: the scaled embedding, then the residual stream after each layer."""
    rows = []
    hooks = [model.model.embed_tokens.register_forward_hook(lambda m, i, o: rows.append(o[0].clone()))]
    for layer in model.model.layers:
        hooks.append(layer.register_forward_hook(
            lambda m, i, o: rows.append((o[0] if isinstance(o, tuple) else o)[0].clone())))
    forward_logits(model, ids)
    for h in hooks:
        h.remove()
    return torch.stack(rows)


def greedy(model, prompt: list[int], n: int) -> tuple[list[int], list[float]]:
    """HF generate (with its KV cache), checked against argmax over full forward passes."""
    model.generation_config.eos_token_id = None  # never stop early: a random model may emit id 1
    model.generation_config.pad_token_id = PAD
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=n, min_new_tokens=0,
                             eos_token_id=None, pad_token_id=PAD)
    gen = out[0, len(prompt):].tolist()
    seq, manual, gaps = list(prompt), [], []
    for _ in range(n):
        row = forward_logits(model, seq)[-1]
        top2 = torch.topk(row, 2).values
        gaps.append(f32(top2[0] - top2[1]))
        nxt = int(torch.argmax(row))
        manual.append(nxt)
        seq.append(nxt)
    if gen != manual:
        raise SystemExit(f"generate() {gen} != manual argmax loop {manual}")
    return gen, gaps


def f32(x: float) -> float:
    """Shortest decimal that reads back as the same float32."""
    return float(str(np.float32(float(x))))


def describe(model) -> dict:
    c = model.config
    attn = model.model.layers[0].self_attn
    layer_types = list(getattr(c, "layer_types", None) or ["full_attention"] * c.num_hidden_layers)
    # What the modules actually use (not just what the config says).
    per_layer_window = [l.self_attn.__dict__.get("sliding_window") for l in model.model.layers]
    rp = c.rope_parameters
    if "full_attention" in rp and isinstance(rp["full_attention"], dict):
        rope = {"global": rp["full_attention"]["rope_theta"], "local": rp["sliding_attention"]["rope_theta"]}
    else:
        rope = {"global": rp["rope_theta"], "local": rp["rope_theta"]}
    return {
        "layer_types": ["local" if t == "sliding_attention" else "global" for t in layer_types],
        "module_sliding_window": per_layer_window,
        "sliding_window": c.sliding_window if any(w for w in per_layer_window) else 0,
        "window_convention": "query p sees keys k with p - W < k <= p",
        "attn_scale": attn.scaling,
        "attn_scale_rule": ("head_dim^-0.5" if isinstance(model, GemmaForCausalLM)
                            else "query_pre_attn_scalar^-0.5"),
        "embed_scale": float(model.model.embed_tokens.embed_scale.to(torch.float32)),
        "rope_theta": rope,
        "attn_softcap": getattr(c, "attn_logit_softcapping", None) or 0,
        "final_softcap": getattr(c, "final_logit_softcapping", None) or 0,
        "rms_eps": c.rms_norm_eps,
        "qk_norm": hasattr(attn, "q_norm"),
        "post_norms": hasattr(model.model.layers[0], "post_feedforward_layernorm"),
        "tied_embedding": bool(c.tie_word_embeddings),
        "activation": getattr(c, "hidden_activation", None) or c.hidden_act,
        "attn_implementation": c._attn_implementation,
    }


def check_semantics(key: str, sem: dict):
    expect = {
        "tiny_gemma1": (["global"] * 2, 0, {"global": 10000.0, "local": 10000.0}, 0, 0, False),
        "tiny_gemma2": (["local", "global"] * 2, 8, {"global": 10000.0, "local": 10000.0}, 50, 30, False),
        "tiny_gemma3": (["local"] * 5 + ["global"], 8, {"global": 1e6, "local": 1e4}, 0, 0, True),
        "tiny_gemma3_gqa": (["local"] * 2 + ["global"] + ["local"] * 2, 8, {"global": 1e6, "local": 1e4}, 0, 0, True),
    }[key]
    got = (sem["layer_types"], sem["sliding_window"], sem["rope_theta"], sem["attn_softcap"],
           sem["final_softcap"], sem["qk_norm"])
    assert got == expect, f"{key}: HF built {got}, the descriptor says {expect}"
    assert sem["embed_scale"] == 8.0 and sem["attn_scale"] == 0.25, sem
    # A window W layer must carry W in the module, global layers None.
    for kind, w in zip(sem["layer_types"], sem["module_sliding_window"]):
        assert (w == 8) if kind == "local" else (w is None), sem


def probe_window(model, ids: list[int], sem: dict):
    """Empirical window convention: change token 0 and see which positions of layer 0 move."""
    other = list(ids)
    other[1] = 3 if ids[1] != 3 else 4  # position 0 is BOS: change position 1 instead
    h0, h1 = hidden_states(model, ids)[1], hidden_states(model, other)[1]  # after layer 0
    moved = [(h0[p] - h1[p]).abs().max().item() > 0 for p in range(len(ids))]
    w = sem["sliding_window"] if sem["layer_types"][0] == "local" else 0
    # (p - W, p] contains position 1 iff p <= W: with W = 8 positions 1..8 move, 9.. do not.
    expect = [1 <= p <= (w if w else len(ids)) for p in range(len(ids))]
    assert moved == expect, f"layer 0 window: moved {moved}"
    return sum(moved)


def check_rope(model, sem: dict):
    re = model.model.rotary_emb
    for kind, theta in (("full_attention", sem["rope_theta"]["global"]), ("sliding_attention", sem["rope_theta"]["local"])):
        inv = getattr(re, f"{kind}_inv_freq", None)
        if inv is None:
            inv = re.inv_freq
        want = 1.0 / (theta ** (torch.arange(0, HEAD_DIM, 2, dtype=torch.float) / HEAD_DIM))
        assert torch.equal(inv, want), (kind, inv, want)


def sensitivity(cls, make_config, state: dict, ids: list[int], base: torch.Tensor) -> dict:
    """Max |Δlogit| when one feature is switched off: proves the fixture exercises it."""
    variants = {}
    cfg = make_config()
    if getattr(cfg, "attn_logit_softcapping", None):
        variants["no_attn_softcap"] = dict(attn_logit_softcapping=None)
    if getattr(cfg, "final_logit_softcapping", None):
        variants["no_final_softcap"] = dict(final_logit_softcapping=None)
    if "sliding_attention" in (getattr(cfg, "layer_types", None) or []):
        variants["no_window"] = dict(layer_types=["full_attention"] * cfg.num_hidden_layers)
    if isinstance(cfg, Gemma3TextConfig):
        variants["local_rope_1e6"] = dict(rope_parameters={
            "full_attention": {"rope_type": "default", "rope_theta": 1e6},
            "sliding_attention": {"rope_type": "default", "rope_theta": 1e6}})
    out = {}
    for name, over in variants.items():
        m = build(cls, make_config(**over))
        m.load_state_dict(state)
        d = forward_logits(m, ids) - base
        out[name] = {"max_abs_diff": f32(d.abs().max()),
                     "argmax_changed": int((forward_logits(m, ids).argmax(-1) != base.argmax(-1)).sum())}
    # Norms without the "1 +": weights w → w - 1 makes (1 + w) into w.
    st = {k: (v - 1 if "norm" in k else v) for k, v in state.items()}
    m = build(cls, make_config())
    m.load_state_dict(st)
    d = forward_logits(m, ids) - base
    out["norm_gain_w_not_1_plus_w"] = {"max_abs_diff": f32(d.abs().max())}
    return out


def dumps(obj) -> str:
    """Indented JSON with lists of numbers kept on one line."""
    text = json.dumps(obj, indent=1)
    return re.sub(r"\[[-0-9.eE+,\s]+\]", lambda m: "[" + ", ".join(m.group(0)[1:-1].split()).replace(",,", ",") + "]",
                  text) + "\n"


def versions() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "safetensors": safetensors.__version__,
            "numpy": np.__version__}


# ---- one fixture -----------------------------------------------------------------------------------
def make_fixture(key, name, cls, make_config, seed, scales, bf16: bool, out_dir: Path) -> dict:
    model = build(cls, make_config())
    randomize(model, seed, scales)
    if bf16:
        round_to_bf16(model)  # HF then runs in f32 on the bf16-rounded weights
    sem = describe(model)
    check_semantics(key, sem)

    g = torch.Generator().manual_seed(1000 + seed)
    ids = [BOS] + torch.randint(3, VOCAB, (SEQ_LEN - 1,), generator=g).tolist()
    logits = forward_logits(model, ids)                       # [T][V]
    hidden = hidden_states(model, ids)                        # [L+1][T][H]
    assert torch.equal(forward_logits(model, ids), logits), "forward pass is not deterministic"
    sem["layer0_positions_seeing_position_1"] = probe_window(model, ids, sem)
    check_rope(model, sem)
    # Causality / chunk independence: the logits of a prefix equal the prefix of the logits.
    # (up to rounding: torch's matmul blocking depends on the row count). The size of that rounding
    # is recorded: it is the noise floor of "the same math, another schedule".
    prefix = forward_logits(model, ids[:GREEDY_PROMPT + 3])
    prefix_noise = float((prefix - logits[:GREEDY_PROMPT + 3]).abs().max())
    # The f64 forward of the same weights: how far f32 rounding alone moves the logits.
    m64 = build(cls, make_config())
    m64.load_state_dict(model.state_dict())
    f64_err = float((forward_logits(m64.double(), ids).double() - logits.double()).abs().max())

    prompt = ids[:GREEDY_PROMPT]
    cont, greedy_gaps = greedy(model, prompt, GREEDY_NEW)
    assert cont[0] == int(logits[GREEDY_PROMPT - 1].argmax())

    top2 = torch.topk(logits, 2, dim=-1).values
    lo, hi = float(logits.min()), float(logits.max())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    sens = sensitivity(cls, make_config, state, ids, logits)

    # Files: HF directory (config.json + model.safetensors) + our reference data.
    out_dir.mkdir(parents=True, exist_ok=True)
    save = model
    if bf16:
        save = build(cls, make_config())
        save.load_state_dict(state)
        save = save.to(torch.bfloat16)
    with tempfile.TemporaryDirectory() as tmp:
        save.save_pretrained(tmp)  # tied head: only model.embed_tokens.weight is stored
        for f in ("config.json", "model.safetensors"):
            shutil.copy(Path(tmp) / f, out_dir / f)
    # The saved directory must reproduce the logits when HF loads it back (in f32).
    with safetensors.safe_open(out_dir / "model.safetensors", "pt") as f:
        names = list(f.keys())
        want = torch.bfloat16 if bf16 else torch.float32
        assert all(f.get_tensor(n).dtype == want for n in names), "unexpected tensor dtype"
    assert "lm_head.weight" not in names and "model.embed_tokens.weight" in names, names
    back = cls.from_pretrained(out_dir, dtype=torch.float32, attn_implementation="eager").eval()
    assert torch.equal(forward_logits(back, ids), logits), "reloaded model gives other logits"
    logits.numpy().astype("<f4").tofile(out_dir / "logits.f32")
    hidden.numpy().astype("<f4").tofile(out_dir / "hidden.f32")

    expected = {
        "format": FORMAT_VERSION,
        "model": name,
        "hf_class": cls.__name__,
        "weights_file": "model.safetensors",
        "weights_dtype": "bfloat16" if bf16 else "float32",
        "compute_dtype": "float32",
        "generated_by": {"command": "python3 tools/make_golden.py", "seed": seed, "scales": scales,
                         **versions()},
        "semantics": sem,
        "sequence": {
            "ids": ids,
            "logits_file": "logits.f32",
            "logits_shape": [SEQ_LEN, VOCAB],
            "argmax": logits.argmax(-1).tolist(),
            "logit_min": f32(lo),
            "logit_max": f32(hi),
            "logit_std": f32(logits.std()),
            "top2_gap_min": f32((top2[:, 0] - top2[:, 1]).min()),
        },
        "hidden": {
            "file": "hidden.f32",
            "shape": list(hidden.shape),
            "rows": "row 0: embedding * embed_scale; row i + 1: residual stream after layer i (before the final norm)",
        },
        "greedy": {
            "prompt": prompt,
            "continuation": cont,
            "top2_gap_min": min(greedy_gaps),
            "top2_gaps": greedy_gaps,  # per step: top-1 minus top-2 logit
            "stops_at_eos": False,
        },
        "tolerance": {"logits_abs": f32(REL_TOL * (hi - lo)), "rule": f"{REL_TOL} * (logit_max - logit_min)",
                      "hf_f32_vs_f64_max_abs": f32(f64_err), "hf_prefix_vs_full_max_abs": f32(prefix_noise)},
        "sensitivity": sens,
    }
    (out_dir / "expected.json").write_text(dumps(expected))
    return expected


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="tests/golden", help="fixture root (default tests/golden)")
    ap.add_argument("--check", action="store_true",
                    help="regenerate into a temporary folder and compare with --out")
    ap.add_argument("--only", metavar="KEY", help="only this model's fixture(s), e.g. tiny_gemma3_gqa")
    args = ap.parse_args()
    torch.set_num_threads(1)  # deterministic reductions, and the machine is shared
    torch.use_deterministic_algorithms(True)
    print("versions:", json.dumps(versions()), flush=True)

    root = Path(args.out)
    target = Path(tempfile.mkdtemp()) if args.check else root
    for key, name, cls, make_config, seed, scales in MODELS:
        if args.only and key != args.only:
            continue
        for bf16 in ((False, True) if key in WITH_BF16 else (False,)):
            sub = key + ("_bf16" if bf16 else "")
            e = make_fixture(key, name, cls, make_config, seed, scales, bf16, target / sub)
            s = e["sequence"]
            print(f"{sub}: layers {e['semantics']['layer_types']}, logits [{s['logit_min']}, {s['logit_max']}] "
                  f"std {s['logit_std']}, top2 gap min {s['top2_gap_min']}, greedy {e['greedy']['continuation']} "
                  f"(gap {e['greedy']['top2_gap_min']})\n  tolerance {json.dumps(e['tolerance'])}\n  sensitivity {json.dumps(e['sensitivity'])}", flush=True)

    if args.check:
        bad = 0
        for sub in sorted(p.name for p in target.iterdir()):
            for f in sorted((target / sub).iterdir()):
                ref = root / sub / f.name
                if f.name == "expected.json":
                    a, b = json.loads(f.read_text()), json.loads(ref.read_text()) if ref.exists() else None
                    if b is not None:
                        a.pop("generated_by"), b.pop("generated_by")
                    same = a == b
                else:
                    same = ref.exists() and f.read_bytes() == ref.read_bytes()
                if not same:
                    bad += 1
                    print(f"DIFFERS: {sub}/{f.name}")
        shutil.rmtree(target)
        print("check:", "all fixtures reproduced bit for bit" if not bad else f"{bad} files differ")
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
