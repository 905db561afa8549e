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
    try:
        client.completions.create(model="no-such-model", prompt="x", max_tokens=1)
        raise AssertionError("expected a 404")
    except Exception as e:  # openai.NotFoundError
        assert "404" in str(e) or type(e).__name__ == "NotFoundError", e
    print(f"ok: models, completions with echo+logprobs, chat ({len(lp.tokens)} tokens scored)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
