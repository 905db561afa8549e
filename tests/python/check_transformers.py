"""Checks that a model directory written by poisonlab loads in Hugging Face transformers and gives
the same per-token log-probabilities as poisonlab did.

usage: check_transformers.py MODEL_DIR SCORES.json
SCORES.json: {"ids": [...], "token_logprobs": [...]} as `poisonlab score --json` prints it.
Exits 0 and prints the largest difference when they agree within 1e-4.
"""
import json
import sys

import torch
from transformers import AutoModelForCausalLM


def main(model_dir: str, scores_path: str) -> int:
    want = json.load(open(scores_path))
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    ids = torch.tensor([want["ids"]])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0], -1)
    got = [logp[i, want["ids"][i + 1]].item() for i in range(len(want["ids"]) - 1)]
    diff = max(abs(a - b) for a, b in zip(got, want["token_logprobs"]))
    print(f"{type(model).__name__} from {model_dir}: {len(got)} log-probs, max |diff| = {diff:.2e}")
    return 0 if diff < 1e-4 and len(got) == len(want["token_logprobs"]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
