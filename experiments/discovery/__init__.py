"""Discovery reproductions (docs/discovery.md): dissertation figs. 6.3–6.7 and known-symmetry recoveries."""
