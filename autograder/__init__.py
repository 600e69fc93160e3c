"""autograder: grade a class of nbgrader notebooks in parallel, sandboxed and robustly."""

__all__ = ["release"]
