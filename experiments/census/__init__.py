"""The symmetry census of the zoo presets (docs/census.md)."""
