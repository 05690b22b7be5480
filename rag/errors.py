"""Domain exceptions. The library raises these; only `api/` turns them into HTTP responses."""

from __future__ import annotations

REBUILD_HINT = "rebuild it with: rag index --corpus <DIR> --out <INDEX_DIR>"


class RagError(Exception):
    """Base class for every error this library raises on purpose."""


class CorpusError(RagError):
    """The corpus folder cannot be read into documents (missing, empty, bad encoding)."""


class IndexNotFoundError(RagError):
    """No index exists at the given path."""

    def __init__(self, path: object) -> None:
        super().__init__(f"no index at {path}; build one with: rag index --out {path}")


class IndexMismatchError(RagError):
    """The index on disk is damaged or was built with other settings than requested."""

    def __init__(self, path: object, problem: str) -> None:
        self.problem = problem
        super().__init__(
            f"index at {path} is unusable: {problem}; "
            f"rebuild it with: rag index --corpus <DIR> --out {path}"
        )


class SourceNotFoundError(RagError):
    """A source name that is not a file of the indexed corpus."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no source named {name!r} among the indexed files")


class InvalidQuestionError(RagError):
    """A question the pipeline cannot process (empty, too long)."""


class UnknownSourceError(InvalidQuestionError):
    """A question restricted to sources that are not files of the indexed corpus."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        listed = ", ".join(repr(n) for n in names)
        super().__init__(
            f"unknown source{'s' if len(names) > 1 else ''} {listed}: not among the indexed files"
        )


class BackendUnavailableError(RagError):
    """The search backend an index lives in does not answer (a server down, a
    collection missing). Retry later or fix the deployment; the index is not damaged."""


class UnsupportedOperationError(RagError):
    """An operation the chosen backend does not offer, such as adopting records that a
    distributed build's workers stored into a backend that takes no remote writes."""
