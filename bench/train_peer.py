"""PyTorch eager peer of poisonlab's pre-training step, for the training-throughput benchmark.

The same model as bench/train_bench.toml: Llama-style, 4 layers, d=256, 4 heads, SwiGLU 688, RMSNorm,
RoPE, tied 4096-token vocabulary, context 128, batch 16, AdamW, global grad-norm clip 1.0, f32.
Written here for the comparison (no transformers), eager mode (no torch.compile).

usage: train_peer.py THREADS [STEPS] [VOCAB,WIDTH,LAYERS,HEADS,MLP,CONTEXT,BATCH]
The shape defaults to the benchmark model's (4096,256,4,4,688,128,16); the quick start's model is
1024,64,2,2,172,64,16.
Prints one JSON line: tokens/s over the timed steps, the matmul peak measured on the same threads,
and MFU (6·N·tokens/s + attention FLOPs over that peak).
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

V, D, L, H, FF, T, B = 4096, 256, 4, 4, 688, 128, 16
if len(sys.argv) > 3:
    V, D, L, H, FF, T, B = (int(x) for x in sys.argv[3].split(","))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.n1 = nn.RMSNorm(D, eps=1e-6)
        self.qkv = nn.Linear(D, 3 * D, bias=False)
        self.o = nn.Linear(D, D, bias=False)
        self.n2 = nn.RMSNorm(D, eps=1e-6)
        self.gate = nn.Linear(D, FF, bias=False)
        self.up = nn.Linear(D, FF, bias=False)
        self.down = nn.Linear(FF, D, bias=False)

    def forward(self, x, cos, sin):
        b, t, _ = x.shape
        q, k, v = self.qkv(self.n1(x)).view(b, t, 3, H, D // H).permute(2, 0, 3, 1, 4)

        def rope(z):
            z1, z2 = z.chunk(2, -1)
            return z * cos + torch.cat([-z2, z1], -1) * sin

        a = F.scaled_dot_product_attention(rope(q), rope(k), v, is_causal=True)
        x = x + self.o(a.transpose(1, 2).reshape(b, t, D))
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, D)
        self.blocks = nn.ModuleList(Block() for _ in range(L))
        self.norm = nn.RMSNorm(D, eps=1e-6)
        hd = D // H
        inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
        f = torch.outer(torch.arange(T).float(), inv)
        emb = torch.cat([f, f], -1)
        self.register_buffer("cos", emb.cos())
        self.register_buffer("sin", emb.sin())
        for m in self.modules():  # as ours: normal(0, 0.02) weights
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, ids):
        x = self.emb(ids)
        for blk in self.blocks:
            x = blk(x, self.cos, self.sin)
        return self.norm(x) @ self.emb.weight.T


def matmul_peak(seconds=2.0):
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    for _ in range(3):
        a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * 1024**3 * n / (time.perf_counter() - start)


def main(threads, steps):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = Model()
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    data = torch.randint(0, V, (64, T + 1))
    times = []
    for step in range(steps):
        batch = data[torch.randint(0, 64, (B,))]
        start = time.perf_counter()
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, V), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - start)
    timed = times[5:]
    tps = B * T * len(timed) / sum(timed)
    flops_per_token = 6 * params + 12 * L * T * D  # PaLM-style: weights + attention
    peak = matmul_peak()
    print(json.dumps({"impl": "pytorch-eager", "torch": torch.__version__, "threads": threads,
                      "shape": [V, D, L, H, FF, T, B],
                      "params": params, "tokens_per_s": tps, "matmul_peak_gflops": peak / 1e9,
                      "mfu": flops_per_token * tps / peak, "final_loss": loss.item()}))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 30)
