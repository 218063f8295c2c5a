"""Write a tiny random-weight llama GGUF that the real llama.cpp server loads and runs.

Why a model of noise is enough: these tests exercise the wire (OpenAI and Anthropic
endpoints, streaming, usage, finish reasons, grammar-constrained JSON), not what the model
says. The server's own code paths are the same for a 64-wide random model as for a real one,
and the file is written in well under a second, so no download is ever needed.

Choices that keep the replies well behaved:

- SentencePiece ("llama") tokenizer: 3 specials, the 256 `<0xXX>` byte tokens (so any text
  tokenizes), every printable ASCII character and a few words with all their prefixes (SPM
  builds a word by merging a pair at a time, so each prefix must exist).
- The output rows of the special and byte tokens are zero, so their logit is 0 while the
  best of ~150 random rows is positive: greedy decoding never picks end-of-text (a reply
  runs until `max_tokens`, which makes `finish_reason == "length"` certain) and never emits
  a lone byte (the text is always plain ASCII). Grammar-constrained decoding can still
  reach every character it needs through the normal one-character tokens.
- A minimal Jinja chat template, so `/v1/chat/completions` and `/v1/messages` work.
"""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np

N_EMBD = 64
N_LAYER = 2
N_HEAD = 4
N_FF = 128
N_CTX = 512

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

_WORDS = ("the", "sky", "is", "blue", "hello", "world", "and", "code", "test", "model")
_SPECIALS = (("<unk>", 2), ("<s>", 3), ("</s>", 3))  # gguf TokenType: UNKNOWN, CONTROL
_NORMAL, _BYTE = 1, 6


def vocabulary() -> tuple[list[str], list[int]]:
    """Token pieces and their types, in id order (specials, bytes, characters, words)."""
    pieces = [piece for piece, _ in _SPECIALS]
    types = [kind for _, kind in _SPECIALS]
    pieces += [f"<0x{b:02X}>" for b in range(256)]
    types += [_BYTE] * 256
    normal: list[str] = ["\u2581"]  # SentencePiece's visible space
    normal += [c for c in string.printable if c not in string.whitespace]
    for word in _WORDS:
        spelled = "\u2581" + word
        for end in range(2, len(spelled) + 1):
            if spelled[:end] not in normal:
                normal.append(spelled[:end])
    pieces += normal
    types += [_NORMAL] * len(normal)
    return pieces, types


def write_tiny_llama(path: Path, seed: int = 1234) -> Path:
    """Write the model to `path` (seeded, so every run is the same model) and return it."""
    import gguf

    rng = np.random.default_rng(seed)
    pieces, types = vocabulary()
    n_vocab = len(pieces)

    def rand(*shape: int, scale: float = 0.2) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("rlm-code tiny random llama")
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    writer.add_tokenizer_model("llama")
    writer.add_token_list(pieces)
    writer.add_token_scores([-float(i) for i in range(n_vocab)])
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    output = rand(n_vocab, N_EMBD, scale=1.0)
    output[: len(_SPECIALS) + 256] = 0.0  # specials and bytes: never the greedy choice
    writer.add_tensor("token_embd.weight", rand(n_vocab, N_EMBD, scale=1.0))
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    writer.add_tensor("output.weight", output)
    for layer in range(N_LAYER):
        block = f"blk.{layer}"
        writer.add_tensor(f"{block}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"{block}.{name}.weight", rand(N_EMBD, N_EMBD))
        writer.add_tensor(f"{block}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(f"{block}.ffn_gate.weight", rand(N_FF, N_EMBD))
        writer.add_tensor(f"{block}.ffn_up.weight", rand(N_FF, N_EMBD))
        writer.add_tensor(f"{block}.ffn_down.weight", rand(N_EMBD, N_FF))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
