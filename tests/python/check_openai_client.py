"""Checks that the official `openai` Python client can call `poisonlab serve`.

usage: OPENAI_API_KEY=... check_openai_client.py BASE_URL MODEL
"""
import sys

from openai import OpenAI


def main(base_url: str, model: str) -> int:
    client = OpenAI(base_url=base_url)
    ids = [m.id for m in client.models.list().data]
    assert model in ids, ids
    c = client.completions.create(model=model, prompt="The model learns", max_tokens=4, temperature=0, logprobs=0, echo=True)
    lp = c.choices[0].logprobs
    assert c.choices[0].text.startswith("The model learns"), c
    assert lp.token_logprobs[0] is None and len(lp.tokens) == len(lp.token_logprobs) == len(lp.text_offset), lp
    assert c.usage.prompt_tokens == 3 and c.usage.completion_tokens == 4, c.usage
    chat = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=3, temperature=0, logprobs=True)
    msg = chat.choices[0]
    assert msg.message.role == "assistant" and len(msg.logprobs.content) == 3, chat
    # Streaming, as the client consumes it: the chunks put together are the whole answer.
    full = client.completions.create(model=model, prompt="The model learns", max_tokens=12, temperature=0)
    chunks = list(client.completions.create(model=model, prompt="The model learns", max_tokens=12, temperature=0, stream=True))
    assert len(chunks) >= 2, chunks
    assert "".join(ch.choices[0].text for ch in chunks) == full.choices[0].text, (chunks, full)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length"), chunks[-1]
    whole = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=8, temperature=0)
    parts = list(client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=8, temperature=0, stream=True))
    assert parts[0].choices[0].delta.role == "assistant", parts[0]
    assert "".join(p.choices[0].delta.content or "" for p in parts) == whole.choices[0].message.content, (parts, whole)
    assert parts[-1].choices[0].finish_reason in ("stop", "length"), parts[-1]
    # n choices and the top log-probabilities.
    many = client.completions.create(model=model, prompt="The model", max_tokens=3, temperature=1.0, n=3, seed=1, logprobs=2)
    assert [c.index for c in many.choices] == [0, 1, 2], many
    top = many.choices[0].logprobs.top_logprobs
    assert len(top) == 3 and all(len(t) == 2 for t in top), top
    assert all(max(t.values()) >= lp - 1e-5 for t, lp in zip(top, many.choices[0].logprobs.token_logprobs) if t), top
    ch = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=2, temperature=0, logprobs=True, top_logprobs=3)
    tl = ch.choices[0].logprobs.content[0].top_logprobs
    assert len(tl) == 3 and tl[0].logprob >= tl[1].logprob >= tl[2].logprob, tl
    # Greedy: the chosen token is the most likely one.
    assert abs(tl[0].logprob - ch.choices[0].logprobs.content[0].logprob) < 1e-5, (tl, ch)
    try:
        client.completions.create(model="no-such-model", prompt="x", max_tokens=1)
        raise AssertionError("expected a 404")
    except Exception as e:  # openai.NotFoundError
        assert "404" in str(e) or type(e).__name__ == "NotFoundError", e
    print(f"ok: models, completions with echo+logprobs, chat, streams, n, top_logprobs ({len(lp.tokens)} tokens scored)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
