"""The reference's own pure helpers, taken from its text at test time: ``create_subtask_status`` and
``increment_subtask_status`` from ``shared/reference/000_5616e0599220dcd3.txt`` beside the repository, and the
``task_progress`` literal of its ``initialize_subtask_info``. The text is the module with its line breaks and
indentation collapsed into spaces, so each function is rebuilt: its docstring dropped and its body split back into
statements with Python's own tokenizer. Every step fails loudly: a comparison with nothing must not pass."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path
from typing import Any, Callable, Dict, List

REPOSITORY = Path(__file__).resolve().parents[2]
REFERENCE_PATH = Path("shared") / "reference" / "000_5616e0599220dcd3.txt"
# `shared/` sits beside the clone; a git worktree of that clone sits one folder further down.
CANDIDATES = [folder / REFERENCE_PATH for folder in REPOSITORY.parents]

# Keywords that continue an expression; any other name at bracket depth 0 after a complete operand starts a statement.
_OPERATOR_KEYWORDS = {"and", "or", "not", "is", "in", "else", "if"}
_STATEMENT_KEYWORDS = {"if", "return", "for", "while", "raise", "del", "pass", "try", "with"}
_SKIP = {tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT, tokenize.COMMENT}


def reference_path() -> Path:
    found = next((path for path in CANDIDATES if path.is_file()), None)
    if found is None:
        raise FileNotFoundError(
            f"The reference {REFERENCE_PATH} is in none of {', '.join(map(str, CANDIDATES))}: the comparison with "
            "its code needs it (shared/ beside the clone)"
        )
    return found


def reference_text() -> str:
    return reference_path().read_text(encoding="utf-8")


def _function_text(text: str, name: str, next_name: str) -> str:
    match = re.search(rf"def {name}\((.*?)\):\s*\"\"\"(.*?)\"\"\"(.*?)def {next_name}\(", text, re.S)
    if match is None:
        raise ValueError(f"def {name}(…) followed by def {next_name}(…) is not in the reference")
    signature, _docstring, body = match.groups()
    return f"def {name}({signature}):\n" + "".join(f"    {statement}\n" for statement in _statements(body))


def _statements(body: str) -> List[str]:
    """The body's simple statements (and one-line ``if x: y``), split where a new one must begin."""
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(body.strip()).readline) if t.type not in _SKIP]
    statements: List[List[str]] = [[]]
    depth = 0
    previous: tokenize.TokenInfo | None = None
    for token in tokens:
        ends_operand = previous is not None and (
            previous.type in (tokenize.NUMBER, tokenize.STRING)
            or previous.string in (")", "]", "}")
            or (previous.type == tokenize.NAME and previous.string not in _OPERATOR_KEYWORDS | _STATEMENT_KEYWORDS)
        )
        starts = token.type == tokenize.NAME and token.string not in _OPERATOR_KEYWORDS - {"if"}
        if depth == 0 and ends_operand and starts:
            statements.append([])
        statements[-1].append(token.string)
        depth += token.string in "([{" and token.type == tokenize.OP
        depth -= token.string in ")]}" and token.type == tokenize.OP
        previous = token
    return [" ".join(statement) for statement in statements if statement]


def reference_helpers() -> Dict[str, Callable[..., Any]]:
    """``create_subtask_status`` and ``increment_subtask_status`` as the reference defines them."""
    text = reference_text()
    source = _function_text(text, "create_subtask_status", "increment_subtask_status") + _function_text(
        text, "increment_subtask_status", "initialize_subtask_info"
    )
    namespace: Dict[str, Any] = {"QUEUING": "QUEUING"}  # instructor_task.models.QUEUING
    exec(compile(source, str(reference_path()), "exec"), namespace)
    return {name: namespace[name] for name in ("create_subtask_status", "increment_subtask_status")}


def reference_task_progress(action_name: str, total_num: int, now: float) -> Dict[str, Any]:
    """The ``task_progress`` dict the reference's ``initialize_subtask_info`` builds and returns."""
    match = re.search(r"task_progress = (\{[^{}]*\})", reference_text())
    if match is None:
        raise ValueError("initialize_subtask_info's task_progress literal is not in the reference")
    names = {"action_name": action_name, "total_num": total_num}
    value = eval(match.group(1), {"__builtins__": {"int": int}, "time": lambda: now}, names)
    if not isinstance(value, dict):
        raise ValueError(f"task_progress is not a dict: {value!r}")
    return value
