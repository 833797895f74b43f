"""Verification of any continuous symmetry (known, product, data-dependent or learned) on held-out data."""

from symdisc.verification.api import verify
from symdisc.verification.config import HELD_OUT_STREAM, VerifyConfig
from symdisc.verification.run import verify_symmetry

__all__ = ["HELD_OUT_STREAM", "VerifyConfig", "verify", "verify_symmetry"]
