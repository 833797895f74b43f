"""Ridge Rider (Parker-Holder et al. 2020) problems: the 2-D toy, binary-tree RL, the lever game, colored digits."""
