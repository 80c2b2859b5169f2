#!/usr/bin/env python3
"""scripts/gpu-check step 3: our engine end to end against an independent oracle, on the GPU machine.

1. The tiny golden fixtures (tests/golden/tiny_gemma*, HF transformers' greedy continuations,
   computed once in float32 on a CPU): gemmaforge-generate --backend cuda on each folder must give
   the recorded greedy ids; --backend cpu likewise.
2. A random HF model in Gemma 3 270M's shapes (gemma_3_270m's descriptor: 18 layers, vocab 262144),
   made here with torch from a fixed seed (tools/make_golden.py's scaled init, so the logits are not
   flat), saved as bf16 safetensors: transformers' greedy continuation on the same GPU (float32
   compute on the bf16-rounded weights, eager attention) against gemmaforge-generate --backend cuda
   and --backend cpu on the saved folder. Greedy ids must be equal; the top-1/top-2 gap of each
   step is printed, so a mismatch at a near-tie can be told from a bug.

Prints one ORACLE line per check ("ORACLE pass|FAIL <what>: ..."); exit 1 if any failed.
Needs torch + transformers + safetensors (the lent machine has them); the 270M part is skipped
with a note where they are missing.

Not covered (no tool for it yet): logits (gemmaforge-generate prints ids, not logits), and the
openchat (Gemma 1 7B) shape at a few layers, which no registered descriptor matches; step 4 runs
that shape at full depth with random weights instead.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
failures = 0


def report(ok: bool, what: str, detail: str):
    global failures
    failures += 0 if ok else 1
    print(f"ORACLE {'pass' if ok else 'FAIL'} {what}: {detail}", flush=True)


def generate(bin_dir: Path, model: Path, backend: str, prompt: list, n: int, kv: str) -> list:
    cmd = [str(bin_dir / "gemmaforge-generate"), "-m", str(model), "--backend", backend, "--kv", kv,
           "--prompt-ids", " ".join(map(str, prompt)), "-n", str(n), "--print-ids", "--ignore-eos",
           "--temp", "0", "-c", str(max(64, len(prompt) + n + 16))]
    if backend == "cpu":
        cmd += ["-t", str(min(16, os.cpu_count() or 1))]
    # The bundle's library path for our binary only (scripts/gpu-check sets GF_BUNDLE_LD_PATH).
    env = dict(os.environ)
    if os.environ.get("GF_BUNDLE_LD_PATH"):
        env["LD_LIBRARY_PATH"] = os.environ["GF_BUNDLE_LD_PATH"]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} ... exited {p.returncode}: {p.stderr.strip()[-400:]}")
    lines = [l for l in p.stdout.strip().splitlines() if l.strip()]
    ids = [int(x) for x in lines[-1].split()] if lines else []
    print(f"  {backend} {model.name}: {time.time() - t0:.1f} s, ids {ids}", flush=True)
    return ids


def golden(bin_dir: Path):
    for d in sorted((ROOT / "tests" / "golden").glob("tiny_gemma*")):
        e = json.loads((d / "expected.json").read_text())
        g = e["greedy"]
        prompt, want = g["prompt"], g["continuation"]
        for backend in ("cuda", "cpu"):
            try:
                got = generate(bin_dir, d, backend, prompt, len(want), "bf16" if backend == "cuda" else "f32")
                report(got == want, f"golden {d.name} {backend}", f"{len(want)} greedy ids" +
                       ("" if got == want else f" differ: got {got}, HF {want}"))
            except Exception as ex:  # noqa: BLE001 - every failure is a reported result
                report(False, f"golden {d.name} {backend}", str(ex))


def random_270m(bin_dir: Path, work: Path, n_new: int):
    try:
        import torch
        from transformers import Gemma3ForCausalLM
        sys.path.insert(0, str(ROOT / "tools"))
        import make_golden as mg
    except Exception as ex:  # noqa: BLE001
        print(f"ORACLE skipped random-270m: {ex}", flush=True)
        return
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    cfg = mg.gemma3_config(vocab_size=262144, hidden_size=640, intermediate_size=2048, num_attention_heads=4,
                           num_key_value_heads=1, head_dim=256, num_hidden_layers=18, max_position_embeddings=32768,
                           query_pre_attn_scalar=256, sliding_window=512,
                           layer_types=(["sliding_attention"] * 5 + ["full_attention"]) * 3)
    t0 = time.time()
    model = mg.build(Gemma3ForCausalLM, cfg)
    mg.randomize(model, 2719, dict(emb=0.45, qk=1.0, out=1.0, post_mean=3.0, final_mean=1.0))
    mg.round_to_bf16(model)
    out = work / "random_gemma3_270m"
    out.mkdir(parents=True, exist_ok=True)
    model.to(torch.bfloat16).save_pretrained(out, safe_serialization=True)
    model = model.to(torch.float32).to(dev).eval()
    g = torch.Generator().manual_seed(5)
    prompt = [2] + torch.randint(3, 262144, (47,), generator=g).tolist()
    seq, want, gaps = list(prompt), [], []
    with torch.no_grad():
        for _ in range(n_new):
            row = model(torch.tensor([seq], device=dev), use_cache=False).logits[0, -1].float()
            top2 = torch.topk(row, 2).values
            gaps.append(round(float(top2[0] - top2[1]), 4))
            want.append(int(torch.argmax(row)))
            seq.append(want[-1])
    print(f"  transformers ({dev}, f32 on bf16 weights): {time.time() - t0:.1f} s, ids {want}, top-2 gaps {gaps}",
          flush=True)
    for backend in ("cuda", "cpu"):
        try:
            got = generate(bin_dir, out, backend, prompt, n_new, "bf16")
            first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)
            report(got == want, f"random-270m {backend} vs transformers",
                   f"{n_new} greedy ids" + ("" if got == want else
                                           f" differ from step {first} (top-2 gap there {gaps[first] if first is not None and first < len(gaps) else '?'}):"
                                           f" got {got}"))
        except Exception as ex:  # noqa: BLE001
            report(False, f"random-270m {backend}", str(ex))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / ".gpu-bundle" / "bin"))
    ap.add_argument("--work", default="/tmp/gf-oracle")
    ap.add_argument("--new", type=int, default=12)
    ap.add_argument("--skip-random", action="store_true")
    a = ap.parse_args()
    bin_dir = Path(a.bin)
    if not (bin_dir / "gemmaforge-generate").exists():
        report(False, "setup", f"no gemmaforge-generate in {bin_dir}")
        return 1
    golden(bin_dir)
    if not a.skip_random:
        random_270m(bin_dir, Path(a.work), a.new)
    print(f"ORACLE summary: {failures} failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
