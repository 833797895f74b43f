"""Discovery (dissertation ch. 6): learned actions a(g, θ, X) and generators h₁…h_k trained so that their orbits keep
the outputs or losses, their artefacts, and the trainer.  The entry point is :func:`symdisc.discover`."""
