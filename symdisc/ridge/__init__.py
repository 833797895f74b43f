"""Ridge Rider (Parker-Holder et al., NeurIPS 2020): exact and scalable, symmetry-aware through the Symmetry
interface (ridge_rider.md).  ``RidgeRider(loss, θ_MIS, RRConfig()).run()``; ``find_mis`` for the start."""

from symdisc.ridge.archive import Archive, Node
from symdisc.ridge.config import RRConfig
from symdisc.ridge.eigen import Eigenpairs, gradient_update, most_negative
from symdisc.ridge.hessian import HessianOperator
from symdisc.ridge.mis import MISResult, find_mis
from symdisc.ridge.rider import Ridge, RidgeRider, RRResult
from symdisc.ridge.symmetric import certify_clusters, orbit_distance, orbit_projector

__all__ = ["Archive", "Eigenpairs", "HessianOperator", "MISResult", "Node", "RRConfig", "RRResult", "Ridge",
           "RidgeRider", "certify_clusters", "find_mis", "gradient_update", "most_negative", "orbit_distance",
           "orbit_projector"]
