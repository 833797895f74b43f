"""Teleportation reproductions (docs/teleport*.md): E1–E13 on the papers' test functions, the 3-layer
regression and scikit-learn's digits / synthetic data (substitutes for MNIST / CIFAR-10)."""
