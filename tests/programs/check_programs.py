#!/usr/bin/env python3
"""End-to-end checks of the example programs (generate, chat, perplexity), one CTest test per case.

Usage: check_programs.py BIN_DIR TESTS_DIR CASE
Each case runs a program as a user would and asserts on its exit status and output.
"""
import json
import os
import subprocess
import sys
import tempfile

BIN, TESTS, CASE = sys.argv[1], sys.argv[2], sys.argv[3]
GOLDEN = os.path.join(TESTS, "golden")


def run(prog, *args, stdin=None, timeout=600):
    p = subprocess.run([os.path.join(BIN, prog), *args], input=stdin, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def expect(cond, what, out="", err=""):
    if not cond:
        print(f"FAIL: {what}\n--- stdout:\n{out[-3000:]}\n--- stderr:\n{err[-3000:]}")
        sys.exit(1)


def ids_str(ids):
    return " ".join(str(i) for i in ids)


def ref_prompt(name):
    ref = json.load(open(os.path.join(GOLDEN, "gemma3_270m", "reference.json")))
    return next(p for p in ref["prompts"] if p["name"] == name)


def case_generate_tiny():
    # Every tiny golden model, f32 and bf16: greedy ids equal HF's.
    for key in ["tiny_gemma1", "tiny_gemma2", "tiny_gemma3", "tiny_gemma2_bf16"]:
        exp = json.load(open(os.path.join(GOLDEN, key, "expected.json")))
        g = exp["greedy"]
        rc, out, err = run("gemmaforge-generate", "-m", os.path.join(GOLDEN, key), "--prompt-ids", ids_str(g["prompt"]),
                           "--print-ids", "--temp", "0", "--ignore-eos", "-n", str(len(g["continuation"])),
                           "--kv", "f32")  # HF ran f32 throughout: a bf16 cache would round keys it did not
        expect(rc == 0, f"{key}: exit {rc}", out, err)
        expect(out.strip() == ids_str(g["continuation"]), f"{key}: greedy ids differ from HF", out, err)
        expect("tok/s" in err, f"{key}: speeds on stderr", out, err)


def case_generate_real_ids():
    p = ref_prompt("english")
    want = p["greedy"]["continuation"]
    rc, out, err = run("gemmaforge-generate", "--prompt-ids", ids_str(p["ids"]), "--print-ids", "--temp", "0",
                       "--ignore-eos", "-n", str(len(want)), "--exact-matmul")
    expect(rc == 0, f"exit {rc}", out, err)
    expect(out.strip() == ids_str(want), "greedy ids of the real model differ from HF transformers", out, err)


def case_generate_real_text():
    rc, out, err = run("gemmaforge-generate", "-p", "The capital of France is Paris, and the capital of Germany is",
                       "-n", "4", "--temp", "0")
    expect(rc == 0, f"exit {rc}", out, err)
    expect("Berlin" in out, "the answer streams to stdout", out, err)
    for k in ["model: gemma-3-270m", "loaded in", "prompt:", "generation:", "tok/s"]:
        expect(k in err, f"stderr reports '{k}'", out, err)
    # Sampling with a seed is reproducible.
    a = run("gemmaforge-generate", "-p", "Once upon a time", "-n", "12", "--temp", "0.9", "--seed", "7")
    b = run("gemmaforge-generate", "-p", "Once upon a time", "-n", "12", "--temp", "0.9", "--seed", "7")
    expect(a[0] == 0 and a[1] == b[1], "same seed, same text", a[1] + "\n---\n" + b[1], a[2])
    # Stop strings cut the output before the stop text.
    rc, out, err = run("gemmaforge-generate", "-p", "1, 2, 3, 4,", "-n", "32", "--temp", "0", "--stop", ", 8")
    expect(rc == 0 and out.strip() == "5, 6, 7" and "stop: stop" in err, "stop string ends the generation", out, err)


def case_generate_errors():
    cases = [
        (["-m", "/nonexistent/model.gguf", "-p", "hi"], "no such file"),
        (["--no-such-flag"], "--no-such-flag"),
        (["-p", "one two three four five six seven eight nine ten eleven twelve", "-c", "8"], "does not fit the context"),
        (["-p", "hi", "--temp", "-1"], "temperature"),
        (["-p", "hi", "--top-p", "1.5"], "top_p"),
        (["--prompt-ids", "2 abc"], "not a token id"),
        (["--prompt-ids", "2 999999999"], "outside the vocabulary"),
        ([], "give a prompt"),
    ]
    for args, needle in cases:
        rc, out, err = run("gemmaforge-generate", *args)
        expect(rc == 2, f"{args}: exit 2 (got {rc})", out, err)
        lines = [l for l in err.splitlines() if l.strip()]
        expect(any(needle in l for l in lines), f"{args}: error mentions '{needle}'", out, err)
        expect(len(lines) <= 4, f"{args}: a short error, not a dump", out, err)
    with tempfile.NamedTemporaryFile(suffix=".gguf") as f:
        f.write(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 8)
        f.flush()
        rc, out, err = run("gemmaforge-generate", "-m", f.name, "-p", "hi")
        expect(rc == 2 and f.name in err, "a corrupt model file is named in the error", out, err)


def case_engine_errors():
    """Engine limits on the command line: exit 2 and one line that names the problem, before or
    after the model file was opened (gemmaforge-serve's too: a server that cannot start says why)."""
    tiny = os.path.join(GOLDEN, "tiny_gemma3")
    ids = ["-m", tiny, "--prompt-ids", "2 3", "-n", "2"]
    cases = [
        ("gemmaforge-generate", ids + ["-c", "-1"], "--ctx-size"),
        ("gemmaforge-generate", ids + ["-c", "100000"], "--ctx-size 100000 exceeds the model's 256 positions"),
        ("gemmaforge-generate", ids + ["--prefill-chunk", "0"], "--prefill-chunk"),
        ("gemmaforge-generate", ids + ["--threads", "-2"], "--threads"),
        ("gemmaforge-perplexity", ["-m", tiny, "--tokens", "/nonexistent.ids", "-c", "0"], "--ctx-size must be at least 8"),
    ]
    if os.path.exists(os.path.join(BIN, "gemmaforge-serve")):
        cases += [
            ("gemmaforge-serve", ["-m", tiny, "--port", "0", "--max-batch", "0"], "--max-batch"),
            ("gemmaforge-serve", ["-m", tiny, "--port", "0", "--max-batch", "100000"], "max_batch must be at most 65536"),
            ("gemmaforge-serve", ["-m", tiny, "--port", "0", "--max-queue", "2000000"], "max_queue must be at most 1048576"),
            # The real model at 65536 x 32768 tokens: terabytes of KV; the start-up plan refuses it
            # before a weight is read.
            ("gemmaforge-serve", ["--port", "0", "--max-batch", "65536", "-c", "32768"],
             "with max_seq_len 32768 x max_batch 65536 does not fit host"),
        ]
    for prog, args, needle in cases:
        rc, out, err = run(prog, *args, timeout=120)
        lines = [l for l in err.splitlines() if l.strip()]
        expect(rc == 2, f"{prog} {args}: exit 2 (got {rc})", out, err)
        expect(len(lines) == 1, f"{prog} {args}: one line on stderr", out, err)
        expect(needle in lines[0], f"{prog} {args}: error mentions '{needle}'", out, err)
        if "does not fit host" in needle:
            for part in ["budget", "tokens of KV", "are needed (short by"]:
                expect(part in lines[0], f"the plan's refusal names '{part}'", out, err)


def case_chat():
    rc, out, err = run("gemmaforge-chat", "--temp", "0", "-n", "12", "-v",
                       stdin="Hello, who are you?\nAnd what can you do?\n/reset\nHi\n/quit\n")
    expect(rc == 0, f"exit {rc}", out, err)
    turns = [l for l in err.splitlines() if l.startswith("[turn")]
    expect(len(turns) == 3, "three turns answered", out, err)
    expect("(0 reused" in turns[0], "first turn computes its prompt", out, err)
    expect("(0 reused" not in turns[1], "second turn reuses the history from the KV pool", out, err)
    expect("(conversation reset)" in out, "/reset acknowledged", out, err)


def case_perplexity():
    text = "/usr/share/common-licenses/GPL-3"
    rc, out, err = run("gemmaforge-perplexity", "-f", text, "-c", "128", "--chunks", "3")
    expect(rc == 0, f"exit {rc}", out, err)
    line = [l for l in out.splitlines() if l.startswith("Final estimate: PPL = ")]
    expect(len(line) == 1, "ends with the llama.cpp-style final line", out, err)
    ppl = float(line[0].split("=")[1].split("+/-")[0])
    expect(1.5 < ppl < 60, f"a plausible perplexity for English legal text ({ppl})", out, err)
    # Token-id input on a tiny model (no tokenizer): works and is deterministic.
    exp = json.load(open(os.path.join(GOLDEN, "tiny_gemma3", "expected.json")))
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
        f.write(ids_str(exp["sequence"]["ids"]))
        f.flush()
        a = run("gemmaforge-perplexity", "-m", os.path.join(GOLDEN, "tiny_gemma3"), "--tokens", f.name, "-c", "16")
        b = run("gemmaforge-perplexity", "-m", os.path.join(GOLDEN, "tiny_gemma3"), "--tokens", f.name, "-c", "16",
                "--prefill-chunk", "3")
        expect(a[0] == 0 and "Final estimate" in a[1], "tiny model perplexity from ids", a[1], a[2])
        expect(a[1] == b[1], "perplexity does not depend on the prefill chunk", a[1] + b[1], b[2])
    rc, out, err = run("gemmaforge-perplexity", "-f", "/nonexistent.txt")
    expect(rc == 2, "missing text file: exit 2", out, err)


def run_limited(limit, prog, *args, timeout=300):
    import resource

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    p = subprocess.run([os.path.join(BIN, prog), *args], capture_output=True, text=True, timeout=timeout, preexec_fn=cap)
    return p.returncode, p.stdout, p.stderr


def case_plan_startup():
    """Every program checks the plan at start-up for the model and the memory it found: it prints
    the capacity line, refuses a context that does not fit (exit 2, the plan's numbers, before the
    weights are read) and with --fit starts with the largest context that fits and says which."""
    import re
    rc, out, err = run("gemmaforge-generate", "-p", "Hi", "-n", "1", "--temp", "0")
    expect(rc == 0 and re.search(r"^plan: \d+ tokens of KV fit, 8192 needed$", err, re.M), "the capacity line", out, err)
    tiny = os.path.join(GOLDEN, "tiny_gemma3")
    rc, out, err = run("gemmaforge-perplexity", "-m", tiny, "--tokens", "/nonexistent.ids", "-c", "16")
    expect("plan: " in err or rc == 2, "perplexity plans too", out, err)
    # Under an address-space limit (RLIMIT_AS, what `ulimit -v` sets): find a limit at which the
    # model's full context (32768) does not fit but a shorter one does.
    seen = []
    for mib in range(300, 4100, 100):
        limit = mib << 20
        rc, out, err = run_limited(limit, "gemmaforge-generate", "-p", "Hi", "-n", "2", "--temp", "0", "-c", "32768")
        seen.append((mib, rc, err.strip()[-300:]))
        if any(low in err for low in ("error while loading shared libraries", "mmap failed", "bad_alloc")):
            continue  # below what the binary, its libraries (CUDA's, when built with it) and the model map
        if rc == 0:
            break  # everything fits from here on
        lines = [l for l in err.splitlines() if l.strip()]
        expect(rc == 2 and len(lines) == 1, f"RLIMIT_AS {mib} MiB, -c 32768: exit 2 and one line", out, err)
        expect("does not fit host" in lines[0] and "RLIMIT_AS" in lines[0] and "leaves room for" in lines[0] or
               "the weights alone take" in lines[0], "the refusal names the plan's numbers and the limit", out, err)
        expect("model:" not in err, "refused before the weights were loaded", out, err)
        if "leaves room for" not in lines[0]:
            continue
        expect("Lower:" in lines[0] and "--ctx-size" in lines[0], "the refusal says what to lower", out, err)
        rc, out, err = run_limited(limit, "gemmaforge-generate", "-p", "The capital of France is", "-n", "2", "--temp", "0",
                                   "--fit")
        m = re.search(r"^plan: (\d+) tokens of KV fit, (\d+) needed.*\(--fit: context (\d+)\)$", err, re.M)
        expect(rc == 0 and m, f"RLIMIT_AS {mib} MiB, --fit: starts and says which context", out, err)
        ctx = int(m.group(3))
        expect(0 < ctx < 32768 and int(m.group(2)) == ctx, f"--fit picked a shorter context ({ctx})", out, err)
        expect(f"context {ctx}" in err, "the engine runs with that context", out, err)
        print(f"RLIMIT_AS {mib} MiB: -c 32768 refused, --fit -> context {ctx}")
        return
    expect(False, f"no limit between 300 and 4000 MiB separated 'refused' from 'fits': {seen}")


globals()["case_" + CASE]()
print(f"ok: {CASE}")
