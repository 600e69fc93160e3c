"""autograder: grade a class of nbgrader notebooks in parallel, sandboxed and robustly."""

import sys

# nbformat imports jsonschema, and jsonschema imports rfc3987_syntax when it is
# installed (jupyter-events asks for it) to check the "iri" string format; importing
# it builds a parser, about 2 s of CPU in every process that imports nbformat (the
# command and each grading worker; `python -X importtime -c "import nbformat"`).
# Neither nbformat's nor nbgrader's schemas use that format, so grading goes without.
sys.modules.setdefault("rfc3987_syntax", None)

__all__ = ["release"]
