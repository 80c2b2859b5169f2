#!/usr/bin/env python3
"""Merge the bench_cuda_* JSON files of one scripts/gpu-check run into bench.json and print the
figures of docs/benchmarks.md's "GPU: to be measured" table (lines starting with FIGURE), plus a
markdown table of them for summary.md. Standard library only (runs on the lent GPU machine and here).

    python3 tools/gpu_figures.py --out bench.json --figures figures.md a.json b.json ...
"""
import argparse
import json
import re
import sys


def load(paths):
    context, rows = None, []
    for p in paths:
        try:
            with open(p) as f:
                d = json.load(f)
        except (OSError, ValueError) as e:
            print(f"gpu_figures: {p}: {e}", file=sys.stderr)
            continue
        context = context or d.get("context", {})
        for b in d.get("benchmarks", []):
            if b.get("run_type", "iteration") == "iteration" and not b.get("error_occurred"):
                rows.append(b)
    return context, rows


def pick(rows, pattern):
    rx = re.compile(pattern)
    return [b for b in rows if rx.search(b["name"])]


def figures(rows):
    """(figure, value, detail) for each figure docs/benchmarks.md lists."""
    out = []
    for b in pick(rows, r"^BM_decode/gemma_7b_bf16/1/512/[01]"):
        graphs = "graphs" if b["name"].split("/")[4].startswith("1") else "eager"
        out.append((f"decode tok/s, Gemma 1 7B shapes bf16, batch 1, context 512, {graphs}",
                    f"{b.get('tok_per_s', 0):.1f} tok/s",
                    f"roofline_frac {b.get('roofline_frac', 0):.3f}, weights roofline "
                    f"{b.get('weights_roofline_tok_per_s', 0):.1f} tok/s"))
    for b in pick(rows, r"^BM_stream"):
        out.append((f"streaming-read baseline {b['name']}", f"{b.get('GBps', 0):.0f} GB/s",
                    f"peak_frac {b.get('peak_frac', 0):.3f}"))
    for b in pick(rows, r"^BM_matvec_exact/[01]/0/[0-9]+/[0-9]+/1/"):  # bf16 (format index 0), T = 1
        parts = b["name"].split("/")
        out.append((f"matvec bf16 {parts[3]}x{parts[4]} T=1 ({b.get('label', '')})",
                    f"{b.get('peak_frac', 0):.3f} of peak", f"{b.get('GBps', 0):.0f} GB/s"))
    for b in pick(rows, r"^BM_decode_attention/"):
        out.append((f"decode attention {b['name'].split('/', 1)[1]}", f"{b.get('peak_frac', 0):.3f} of peak",
                    f"{b.get('GBps', 0):.0f} GB/s"))
    for b in pick(rows, r"^BM_sample/"):
        out.append((f"sampling {b['name']} ({b.get('label', '')})", f"{b.get('us_per_row', 0):.1f} µs/row", ""))
    for b in pick(rows, r"^BM_norm/"):
        out.append((f"norm {b['name']} ({b.get('label', '')})", f"{b.get('real_time', 0):.2f} {b.get('time_unit', '')}",
                    f"{b.get('GBps', 0):.0f} GB/s"))
    for b in pick(rows, r"^BM_gemm/"):
        out.append((f"gemm {b['name']} ({b.get('label', '')})", f"{b.get('real_time', 0):.1f} {b.get('time_unit', '')}",
                    ", ".join(f"{k} {b[k]:.3g}" for k in ("TFLOPS", "GBps", "peak_frac") if k in b)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--figures", required=True)
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    context, rows = load(a.files)
    with open(a.out, "w") as f:
        json.dump({"context": context, "benchmarks": rows}, f, indent=1)
    figs = figures(rows)
    for name, value, detail in figs:
        print(f"FIGURE {name}: {value}" + (f" ({detail})" if detail else ""))
    with open(a.figures, "w") as f:
        gpu = context.get("gpu", "unknown GPU") if context else "unknown GPU"
        f.write(f"## Figures ({gpu})\n\n| figure | value | detail |\n|---|---|---|\n")
        for name, value, detail in figs:
            f.write(f"| {name} | {value} | {detail} |\n")
    print(f"gpu_figures: {len(rows)} benchmark rows from {len(a.files)} files -> {a.out}")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
