"""Symmetry teleportation (dissertation ch. 4–5, app. C; ICLR 2024): move θ along any Symmetry to a
point of the same loss with a better gradient, sharpness or curvature, inside any optimizer."""

from symdisc.teleport.compare import TrainSpec, compare_training, known_symmetry
from symdisc.teleport.geometry import curve_curvature, orbit_curvature, psi, random_directions, sharpness
from symdisc.teleport.guard import LossGuard
from symdisc.teleport.objectives import ObjectiveSpec, adagrad_norm, grad_norm, make_objective
from symdisc.teleport.optimizer import TeleportOptimizer
from symdisc.teleport.routine import TeleportConfig, TeleportResult, teleport
from symdisc.teleport.testfunctions import TestFunction, booth, ellipse, quadratic, rosenbrock

__all__ = ["LossGuard", "ObjectiveSpec", "TeleportConfig", "TeleportOptimizer", "TeleportResult", "TestFunction",
           "TrainSpec", "adagrad_norm", "booth", "compare_training", "curve_curvature", "ellipse", "grad_norm",
           "known_symmetry", "make_objective", "orbit_curvature", "psi", "quadratic", "random_directions",
           "rosenbrock", "sharpness", "teleport"]
