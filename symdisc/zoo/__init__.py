"""The architecture zoo: registered presets (``get``, ``names``) and ``from_module`` for any nn.Module."""

from symdisc.zoo.mlp import build_mlp, parse_dims
from symdisc.zoo.module import from_module, module_theta
from symdisc.zoo.norm import build_layernorm_mlp
from symdisc.zoo.registry import get, names, preset, register
from symdisc.zoo.transformer import build_tiny_transformer

register("mlp", build_mlp, "MLP with chosen widths and activation", "Table 1.1; dissertation ch. 1-2, 6")
register("linear-scalar", build_mlp, "w2·w1·x, m=h=n=1, one sample", "dissertation §6.5.3, fig. 6.3",
         dims=(1, 1, 1), act="linear", batch=1)
register("sigmoid-2layer", build_mlp, "σ(x W1) W2, W1 3×3, W2 3×1, sigmoid, one sample",
         "dissertation §6.5.4, fig. 6.4", dims=(3, 3, 1), act="sigmoid", batch=1)
register("tanh-3layer", build_mlp, "2-2-2-1 tanh MLP, one sample", "dissertation §6.5.4, fig. 6.5",
         dims=(2, 2, 2, 1), act="tanh", batch=1)
register("mlp-skip", build_mlp, "2-4-4-1 tanh MLP with a residual skip on the second hidden layer",
         "dissertation §6.5.4 (three-layer net with skip connection), fig. 6.2c", dims=(2, 4, 4, 1),
         act="tanh", skip=True)
register("teleport-regression", build_mlp, "5-6-7-8 LeakyReLU MLP, batch 4, θ, X, Y ~ U[0,1]",
         "dissertation §4.6.1 (teleportation regression, E3)", dims=(5, 6, 7, 8), act="leakyrelu", batch=4,
         data="uniform")
register("tiny-transformer", build_tiny_transformer, "one-head attention + linear FFN, B=8, T=2, d=2, d_ff=4",
         "dissertation §6.5.5, fig. 6.7")

register("layernorm-linear", build_layernorm_mlp, "LayerNorm(4) → Linear(4, 3), batch 64",
         "issue 10: a census beyond the linear symmetries (fields in 1/γ)", dims=(4, 3))
register("layernorm-mlp", build_layernorm_mlp, "LayerNorm(4) → Linear(4, 3) → ReLU → Linear(3, 2), batch 64",
         "issue 10: the nonlinear LayerNorm fields below a ReLU MLP", dims=(4, 3, 2))

__all__ = ["build_layernorm_mlp", "build_mlp", "build_tiny_transformer", "from_module", "get", "module_theta",
           "names", "parse_dims", "preset", "register"]
