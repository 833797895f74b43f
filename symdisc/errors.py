"""The exceptions symdisc raises: one base, three kinds a caller (a sweep, the CLI) can tell apart.

* :class:`InputError`     — bad input or configuration: the request cannot be satisfied as given
  (wrong shapes, unknown names, a symmetry that belongs to another model).  Retrying with the same
  arguments fails again; the CLI exits with code 2.
* :class:`ArtefactError`  — a file on disk is missing, truncated, corrupted or of another schema
  (artefacts, checkpoints, result files).  The CLI exits with code 3.
* :class:`NumericalError` — the computation itself failed: divergence, non-finite losses, a
  solve that did not converge.  Another seed or step size may succeed; the CLI exits with code 4.
* :class:`StorageError`   — a file could not be written (disk full, read-only or missing directory,
  permissions); nothing half-written is left.  The CLI exits with code 2.

Messages are one line, name no CLI flag (the library does not know its caller), and say what to do.
``SymdiscError`` itself is the base class; catching it catches all three.  :class:`SymdiscWarning`
marks what symdisc does but wants the caller to know (unverified fields used, an inexact teleport).
"""


class SymdiscError(Exception):
    """Base class of every error symdisc raises on purpose, with a message fit for a one-line report."""


class InputError(SymdiscError, ValueError):
    """Bad input or an unsatisfiable configuration (also a ``ValueError``)."""


class ArtefactError(SymdiscError):
    """A missing, truncated, corrupted or incompatible file (artefact, checkpoint, result)."""


class StorageError(SymdiscError, OSError):
    """Writing a file failed (no space, read-only or missing directory, permissions); nothing was left behind."""


class NumericalError(SymdiscError, ArithmeticError):
    """Divergence, non-finite values or a numerical method that failed to converge."""


class PartialFailure(SymdiscError):
    """Some independent units of a batch (sweep tasks, benchmark cases) failed; every other result was kept and
    written.  The CLI exits with code 5."""


class SymdiscWarning(UserWarning):
    """Something the caller should know; the CLI prints it as one ``warning:`` line."""
