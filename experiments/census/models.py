"""Third-party-style models a user brings (written the way popular public code writes them, not for symdisc):
a nanoGPT-style GPT (token + position embeddings, pre-LayerNorm causal attention with fused QKV, GELU MLP,
tied head), a LLaMA-style LM (RMSNorm written out, SwiGLU) and small CNNs.  Used by the detection census
(``census_detected``) and the tests."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int, bias: bool, flash: bool):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.n_head, self.n_embd, self.flash = n_head, n_embd, flash

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        if self.flash:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            mask = torch.tril(torch.ones(T, T, dtype=torch.bool, device=x.device))
            att = F.softmax(att.masked_fill(~mask, float("-inf")), dim=-1)
            y = att @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, n_embd: int, bias: bool):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, n_embd: int, n_head: int, bias: bool, flash: bool):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = CausalSelfAttention(n_embd, n_head, bias, flash)
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = MLP(n_embd, bias)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """nanoGPT's layout: ``transformer.{wte, wpe, h, ln_f}`` and an lm_head tied to wte."""

    def __init__(self, vocab: int = 16, block_size: int = 8, n_embd: int = 8, n_head: int = 2, n_layer: int = 1,
                 bias: bool = True, flash: bool = False):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab, n_embd), wpe=nn.Embedding(block_size, n_embd),
            h=nn.ModuleList([Block(n_embd, n_head, bias, flash) for _ in range(n_layer)]),
            ln_f=nn.LayerNorm(n_embd, bias=bias)))
        self.lm_head = nn.Linear(n_embd, vocab, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying

    def forward(self, idx):
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


class RMSNorm(nn.Module):
    """LLaMA's RMSNorm, written out as its reference code does."""

    def __init__(self, d: int, eps: float = 1e-6):
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class LlamaBlockLM(nn.Module):
    """A LLaMA-style LM: embedding, one pre-RMSNorm block (separate q/k/v/o projections, SDPA, SwiGLU MLP, no
    biases), a final RMSNorm and an untied head."""

    def __init__(self, vocab: int = 16, d: int = 8, n_head: int = 2, hidden: int = 16):
        super().__init__()
        self.emb, self.n1, self.n2, self.norm = nn.Embedding(vocab, d), RMSNorm(d), RMSNorm(d), RMSNorm(d)
        self.wq, self.wk, self.wv, self.wo = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.w1, self.w3 = nn.Linear(d, hidden, bias=False), nn.Linear(d, hidden, bias=False)
        self.w2 = nn.Linear(hidden, d, bias=False)
        self.head, self.n_head = nn.Linear(d, vocab, bias=False), n_head

    def forward(self, idx):
        x = self.emb(idx)
        B, T, C = x.shape
        y = self.n1(x)
        q, k, v = (w(y).view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for w in (self.wq, self.wk, self.wv))
        x = x + self.wo(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C))
        y = self.n2(x)
        x = x + self.w2(F.silu(self.w1(y)) * self.w3(y))
        return self.head(self.norm(x))


def cnn(bias: bool = True, pooled: bool = False) -> nn.Module:
    """conv-ReLU-conv on 1×8×8 images; ``pooled`` adds max-pool, a second ReLU, adaptive average pool, a linear head."""
    if not pooled:
        return nn.Sequential(nn.Conv2d(1, 3, 3, bias=bias), nn.ReLU(), nn.Conv2d(3, 2, 3, bias=bias))
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, bias=bias), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(3, 4, 3, padding=1, bias=bias), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(16, 5, bias=bias))


def token_batches(vocab: int, T: int):
    def sample(B: int, gen: torch.Generator):
        return torch.randint(0, vocab, (B, T), generator=gen), torch.randint(0, vocab, (B, T), generator=gen)
    return sample


def image_batches(out_shape: tuple[int, ...]):
    def sample(B: int, gen: torch.Generator):
        return torch.randn(B, 1, 8, 8, generator=gen), torch.randn(B, *out_shape, generator=gen)
    return sample
