"""RR's benchmark problems as differentiable functions of a flat θ (float64): the 2-D toy (Fig. 1), the
binary-tree RL with exact expectations (Fig. 2) and the lever coordination game (Fig. 6)."""
