#!/usr/bin/env python3
"""Write the small seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/).

Seeds are tiny valid inputs that reach deep into each parser, so libFuzzer's mutations start
from interesting states: a GGUF with every value type and every supported tensor type, GGUF
metadata of a Gemma 3 model with a small vocabulary, a tiny model of the tiny-gemma1 descriptor
shapes scaled down, safetensors files and config.json variants, text samples, conversations.
Deterministic; plain struct packing (no gguf package) so the seeds do not share code with
anything under test. Usage: tests/fuzz/make_seeds.py
"""

import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def gstr(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return u64(len(b)) + b


class Gguf:
    T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR, T_U64, T_I64, T_F64 = range(13)
    FMT = {T_U8: "<B", T_I8: "<b", T_U16: "<H", T_I16: "<h", T_U32: "<I", T_I32: "<i", T_F32: "<f",
           T_BOOL: "<B", T_U64: "<Q", T_I64: "<q", T_F64: "<d"}

    def __init__(self):
        self.kvs = []
        self.tensors = []

    def value(self, t, v):
        if t == self.T_STR:
            return gstr(v)
        if t == self.T_ARR:
            et, xs = v
            return u32(et) + u64(len(xs)) + b"".join(self.value(et, x) for x in xs)
        return struct.pack(self.FMT[t], v)

    def kv(self, key, t, v):
        self.kvs.append(gstr(key) + u32(t) + self.value(t, v))
        return self

    def tensor(self, name, dims, ggml_type, data):
        self.tensors.append((name, dims, ggml_type, data))
        return self

    def build(self, alignment=32):
        out = b"GGUF" + u32(3) + u64(len(self.tensors)) + u64(len(self.kvs)) + b"".join(self.kvs)
        offsets, off = [], 0
        for name, dims, t, data in self.tensors:
            offsets.append(off)
            off = (off + len(data) + alignment - 1) // alignment * alignment
            out += gstr(name) + u32(len(dims)) + b"".join(u64(d) for d in dims) + u32(t) + u64(offsets[-1])
        out += b"\0" * ((-len(out)) % alignment)
        data = bytearray(off)
        for (name, dims, t, d), o in zip(self.tensors, offsets):
            data[o:o + len(d)] = d
        return out + bytes(data)


def f32s(xs):
    return b"".join(struct.pack("<f", x) for x in xs)


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def gguf_seeds():
    G = Gguf
    g = Gguf()
    for t, v in [(G.T_U8, 7), (G.T_I8, -7), (G.T_U16, 700), (G.T_I16, -700), (G.T_U32, 70000), (G.T_I32, -70000),
                 (G.T_F32, 1.5), (G.T_BOOL, 1), (G.T_STR, "héllo"), (G.T_U64, 1 << 40), (G.T_I64, -(1 << 40)),
                 (G.T_F64, 2.25)]:
        g.kv(f"t.{t}", t, v)
    g.kv("t.arr", G.T_ARR, (G.T_F32, [1.0, 2.0]))
    g.kv("t.strs", G.T_ARR, (G.T_STR, ["a", "日本"]))
    g.kv("t.nested", G.T_ARR, (G.T_ARR, [(G.T_U16, [1, 2]), (G.T_U16, [3])]))
    g.tensor("f32", [8], 0, f32s(range(8)))
    g.tensor("f16", [8], 1, b"\x00\x3c" * 8)
    g.tensor("bf16", [8], 30, b"\x80\x3f" * 8)
    g.tensor("q8_0", [32], 8, b"\x00\x3c" + bytes(range(32)))
    g.tensor("q5_0", [32], 6, b"\x00\x3c" + bytes(20))
    g.tensor("q4_k", [256], 12, bytes(144))
    g.tensor("q6_k", [256], 14, bytes(210))
    g.tensor("q4_0", [32], 2, bytes(18))
    write("gguf", "all_types.gguf", g.build())

    # Gemma 3 270M's metadata with a small vocabulary and no tensors.
    g = Gguf()
    g.kv("general.architecture", G.T_STR, "gemma3").kv("general.name", G.T_STR, "Gemma 3 270m")
    for k, v in [("block_count", 18), ("embedding_length", 640), ("feed_forward_length", 2048), ("context_length", 32768),
                 ("attention.head_count", 4), ("attention.head_count_kv", 1), ("attention.key_length", 256),
                 ("attention.sliding_window", 512)]:
        g.kv("gemma3." + k, G.T_U32, v)
    g.kv("gemma3.rope.freq_base", G.T_F32, 1e6).kv("gemma3.attention.layer_norm_rms_epsilon", G.T_F32, 1e-6)
    toks = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "\n", "  "] + \
           [f"<0x{b:02X}>" for b in range(16)] + ["\u2581", "a", "b", "ab", "\u2581a"]
    types = [3, 3, 3, 3, 3, 3, 4, 4] + [6] * 16 + [1] * 5
    g.kv("tokenizer.ggml.model", G.T_STR, "llama").kv("tokenizer.ggml.tokens", G.T_ARR, (G.T_STR, toks))
    g.kv("tokenizer.ggml.scores", G.T_ARR, (G.T_F32, [-float(i) for i in range(len(toks))]))
    g.kv("tokenizer.ggml.token_type", G.T_ARR, (G.T_I32, types))
    g.kv("tokenizer.ggml.bos_token_id", G.T_U32, 2).kv("tokenizer.ggml.add_bos_token", G.T_BOOL, 1)
    write("gguf", "gemma3_metadata.gguf", g.build())

    # A complete model of tiny shapes (1 layer, hidden 16, ffn 32, vocab 32, 1 head of 16):
    # binds to nothing registered, but walks the whole binding path.
    g = Gguf()
    g.kv("general.architecture", G.T_STR, "gemma")
    for k, v in [("block_count", 1), ("embedding_length", 16), ("feed_forward_length", 32), ("attention.head_count", 1),
                 ("attention.head_count_kv", 1), ("attention.key_length", 16)]:
        g.kv("gemma." + k, G.T_U32, v)
    g.tensor("token_embd.weight", [16, 32], 0, f32s([0.01] * 512))
    g.tensor("output_norm.weight", [16], 0, f32s([1.0] * 16))
    for n, rows, cols in [("attn_q", 16, 16), ("attn_k", 16, 16), ("attn_v", 16, 16), ("attn_output", 16, 16),
                          ("ffn_gate", 32, 16), ("ffn_up", 32, 16), ("ffn_down", 16, 32)]:
        g.tensor(f"blk.0.{n}.weight", [cols, rows], 0, f32s([0.02] * rows * cols))
    g.tensor("blk.0.attn_norm.weight", [16], 0, f32s([1.0] * 16))
    g.tensor("blk.0.ffn_norm.weight", [16], 0, f32s([1.0] * 16))
    write("gguf", "micro_model.gguf", g.build())


def safetensors(tensors, meta=None):
    header, off, blobs = {}, 0, []
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
        blobs.append(data)
    if meta:
        header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((-len(h)) % 8)
    return u64(len(h)) + h + b"".join(blobs)


def safetensors_seeds():
    # First byte even: a safetensors file follows; odd: a config.json follows.
    write("safetensors", "f32.st", b"\0" + safetensors([("a", "F32", [2, 2], f32s([1, 2, 3, 4])),
                                                       ("b", "BF16", [3], b"\x80\x3f" * 3)], {"format": "pt"}))
    write("safetensors", "mixed.st", b"\2" + safetensors([("model.norm.weight", "F16", [4], b"\x00\x3c" * 4),
                                                         ("x", "I64", [1], u64(5)), ("empty", "F32", [0], b"")]))
    base = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 1, "head_dim": 16, "vocab_size": 512}
    write("safetensors", "gemma.json", b"\1" + json.dumps({"model_type": "gemma", **base}).encode())
    write("safetensors", "gemma2.json", b"\1" + json.dumps({"model_type": "gemma2", **base, "sliding_window": 8,
                                                            "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0,
                                                            "query_pre_attn_scalar": 16, "rope_theta": 10000.0}).encode())
    write("safetensors", "gemma3.json", b"\1" + json.dumps({"model_type": "gemma3", "text_config": {
        "model_type": "gemma3_text", **base, "sliding_window": 8, "layer_types": ["sliding_attention", "full_attention"],
        "rope_parameters": {"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6},
                            "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}}}}).encode())


def tokenizer_seeds():
    for i, t in enumerate(["Hello world", "  two  spaces\n\n\tand tabs", "日本語のテキスト 🤗 ∂x",
                           "<start_of_turn>user\nhi<end_of_turn>", "def f(x):\n    return x ** 2\n",
                           "caf\u00e9 na\u00efve \u200b\ufeff", "\U0010fffd\ue000 \x00\x01"]):
        write("tokenizer", f"text{i}", bytes([2 * i]) + t.encode("utf-8"))
    write("tokenizer", "special", b"\x01<bos><eos><start_of_turn><end_of_turn><unused0>")
    write("tokenizer", "invalid", b"\x00a\xffb\xe2\x82c\xed\xa0\x80\xf4\x90\x80\x80")
    # A minimal serialized SentencePiece model for the proto reader (first byte 0xff).
    piece = lambda text, score, typ: b"\x0a" + bytes([len(p := (b"\x0a" + bytes([len(text)]) + text + b"\x15" +
                                                               struct.pack("<f", score) + b"\x18" + bytes([typ])))]) + p
    model = piece(b"<unk>", 0.0, 2) + piece(b"<s>", 0.0, 3) + piece(b"\xe2\x96\x81a", -1.0, 1)
    model += b"\x12\x06\x18\x02\x20\x03\x28\x00" + b"\x1a\x0a\x0a\x08identity"
    write("tokenizer", "model.proto", b"\xff" + model)


def chat_seeds():
    # Byte 0: bit0 openchat, bit1 generation prompt, bit2 bos, bit3 system first; 0x00 splits messages.
    write("chat", "one", b"\x06Hello!")
    write("chat", "system", b"\x0eBe brief.\0  What is 2+2?\n")
    write("chat", "multi", b"\x07Hi\0Hello! How can I help?\0Tell me about \xe6\x97\xa5\xe6\x9c\xac")
    write("chat", "roles", b"\x36a\0b\0c")
    write("chat", "spaces", b"\x06\xe3\x80\x80 x \xc2\xa0\0\t\0")


def openai_request_seeds():
    # Byte 0: even = /v1/completions, odd = /v1/chat/completions; the rest is the request body.
    def req(name, chat, body):
        write("openai_request", name, bytes([1 if chat else 0]) + (body if isinstance(body, bytes) else
                                                                   json.dumps(body).encode("utf-8")))
    req("completion", False, {"model": "gemma-3-270m", "prompt": "The capital of France is", "max_tokens": 8,
                              "temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "seed": -3,
                              "stop": ["\n", "."], "stream": True, "stream_options": {"include_usage": True}})
    req("completion_ids", False, {"prompt": [2, 651, 6037], "max_completion_tokens": 4, "frequency_penalty": 0.5,
                                  "presence_penalty": -0.5, "repetition_penalty": 1.1, "ignore_eos": True})
    req("completion_nested", False, {"prompt": [[2, 9, 10]], "n": 1, "best_of": 1, "logprobs": False, "echo": False,
                                     "suffix": "", "logit_bias": {}, "stop": None, "user": "x"})
    req("chat", True, {"model": "gemma-3-270m", "max_tokens": 32, "stream": False, "response_format": {"type": "text"},
                       "messages": [{"role": "developer", "content": "You are terse."},
                                    {"role": "user", "content": [{"type": "text", "text": "Name"},
                                                                 {"type": "text", "text": "a color."}]},
                                    {"role": "assistant", "content": None},
                                    {"role": "user", "content": "caf\u00e9 \ud83e\udd17"}],
                       "tools": [], "temperature": 0, "seed": 18446744073709551615})
    req("bad_types", True, b'{"messages": "hi", "temperature": "hot", "max_tokens": 1.5e309, "stop": [1]}')


if __name__ == "__main__":
    gguf_seeds()
    safetensors_seeds()
    tokenizer_seeds()
    chat_seeds()
    openai_request_seeds()
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT) for f in fs)
    print(f"{OUT}: {sum(len(fs) for _, _, fs in os.walk(OUT))} seeds, {total} bytes")
