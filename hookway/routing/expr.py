"""CEL expressions (https://cel.dev): a route's ``filter`` and ``transform``.

Evaluated by ``common-expression-language`` (the Rust ``cel`` crate behind Python
bindings): CEL can't loop except over a list or map it is given, can't recurse, and can
call no Python, so an expression from the config file or the API runs no code of its
own. What is left to bound is cost, checked here before an expression is saved:

- at most MAX_LENGTH characters (the parser also refuses deep nesting with a clear
  error; longer expressions of thousands of terms crashed the Rust parser's stack);
- no comprehension (``all``, ``exists``, ``exists_one``, ``map``, ``filter``) inside
  another one, so an evaluation takes time in proportion to the expression times the
  payload, never a list's length squared through nested loops;
- only the four variables (``payload``, ``headers``, ``event_name``, ``source``) and the
  CEL standard functions the library has, so a typo is refused when it is saved rather
  than failing every event.

Each distinct expression is compiled once per process (``compile_expression`` caches by
text); evaluating it takes microseconds (bench/routing.py).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import cel

from hookway.routing.errors import EvalError, RuleError

VARIABLES = ("payload", "headers", "event_name", "source")
MAX_LENGTH = 4000
MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
# The CEL standard functions the library implements (CEL's own operators are named
# "_+_", "@in", "!_" and so on, and comprehensions expand to operators).
FUNCTIONS = frozenset(
    {
        "size",
        "contains",
        "startsWith",
        "endsWith",
        "matches",
        "int",
        "uint",
        "double",
        "string",
        "bytes",
        "timestamp",
        "duration",
        "type",
        "dyn",
        "getFullYear",
        "getMonth",
        "getDate",
        "getDayOfMonth",
        "getDayOfWeek",
        "getDayOfYear",
        "getHours",
        "getMinutes",
        "getSeconds",
        "getMilliseconds",
    }
)

# String literals (raw, bytes, triple-quoted) and comments, blanked before the lexical
# checks below so that a ".map(" inside a string is not taken for a comprehension.
_LITERAL = re.compile(
    r"""(?:[bB]?[rR]|[rR][bB])(?:'''[\s\S]*?'''|\"\"\"[\s\S]*?\"\"\"|'[^'\n]*'|"[^"\n]*")"""
    r"""|[bB]?(?:'''(?:\\[\s\S]|[\s\S])*?'''|\"\"\"(?:\\[\s\S]|[\s\S])*?\"\"\""""
    r"""|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")"""
    r"""|//[^\n]*"""
)
_MACRO_CALL = re.compile(r"\.\s*(all|exists_one|exists|map|filter)\s*\(\s*([A-Za-z_]\w*)?")
_FUNCTION_NAME = re.compile(r"[A-Za-z][\w.]*")
_PARSE_ERROR = re.compile(r"ERROR: <input>:(\d+):(\d+): (.*)")


# A payload path: every mention of the variable with the fields it reads by name. A
# reference that continues any other way ("[", a method call, nothing) reads the whole
# subtree where its path stops.
_PAYLOAD_PATH = re.compile(r"(?<![.\w])payload((?:\s*\.\s*[A-Za-z_]\w*)*)(\s*\()?")
_FIELD = re.compile(r"[A-Za-z_]\w*")

# The fields an expression reads from the payload, as a trie: each key a field name,
# each value its own trie; WHOLE where a subtree is read in full.
Trie = dict[str, "Trie"] | None
WHOLE: Trie = None


@dataclass(frozen=True)
class Expression:
    """A compiled CEL expression, its text, and the part of ``payload`` it can read."""

    text: str
    program: cel.Program
    reads: Trie = WHOLE
    variables: frozenset[str] = frozenset(VARIABLES)


def _payload_reads(bare: str) -> Trie:
    """What of the payload ``bare`` (literals blanked) can read, as a Trie.

    Handing the whole payload to the library converts every value of it, most of an
    evaluation's cost (bench/routing.py: tens of times a two-field filter's at 10 KB); a
    filter on two fields needs only those, so only the fields named are converted. A path's last field followed by "(" is a method (``.size()``) or a
    comprehension (``.exists(``) on the field before it."""
    root: dict[str, Trie] = {}
    for m in _PAYLOAD_PATH.finditer(bare):
        fields = _FIELD.findall(m.group(1))
        if m.group(2) and fields:
            fields = fields[:-1]
        if not fields:
            return WHOLE
        node: dict[str, Trie] = root
        for i, name in enumerate(fields):
            last = i == len(fields) - 1
            if name in node:
                child = node[name]
                if child is None:  # WHOLE already
                    break
                if last:
                    node[name] = WHOLE
                    break
                node = child
            elif last:
                node[name] = WHOLE
            else:
                child_node: dict[str, Trie] = {}
                node[name] = child_node
                node = child_node
    return root


def prune(payload: Any, reads: Trie) -> Any:
    """The part of ``payload`` an expression with these ``reads`` can see: the same
    values where it looks, nothing elsewhere (so ``has()`` and missing keys behave as on
    the whole payload)."""
    if reads is None or not isinstance(payload, dict):  # None: WHOLE
        return payload
    return {name: prune(payload[name], sub) for name, sub in reads.items() if name in payload}


def _blank_literals(text: str) -> str:
    return _LITERAL.sub(lambda m: '""', text)


def _parse_problem(message: str) -> str:
    """The library's parse errors as "line L, column C: what", one per error."""
    found = [
        f"line {line}, column {column}: {what.strip()}"
        for line, column, what in _PARSE_ERROR.findall(message)
    ]
    return "; ".join(found) if found else message.strip().splitlines()[0]


def _comprehensions(text: str) -> tuple[set[str], str | None]:
    """The names comprehensions bind, and what is wrong with their nesting (or None)."""
    bare = _blank_literals(text)
    bound: set[str] = set()
    calls = {m.end(1) + (bare[m.end(1) :].index("(")): m for m in _MACRO_CALL.finditer(bare)}
    for m in calls.values():
        if m.group(2):
            bound.add(m.group(2))
    # Walk the parentheses: each open one is a comprehension's (its name) or not (None).
    stack: list[str | None] = []
    for i, char in enumerate(bare):
        if char == "(":
            name = calls[i].group(1) if i in calls else None
            outer = next((frame for frame in reversed(stack) if frame), None)
            if name and outer:
                return bound, (
                    f"'{name}' inside '{outer}': a comprehension inside another is not "
                    "allowed (its cost grows with the product of the lists' lengths); test "
                    "membership with 'in' instead, e.g. "
                    "payload.items.exists(i, 'urgent' in i.labels)"
                )
            stack.append(name)
        elif char == ")" and stack:
            stack.pop()
    return bound, None


def check(text: str) -> Expression:
    """Compile ``text`` as a route expression; return it, or raise RuleError saying what
    is wrong and where (line and column for syntax errors)."""
    if not isinstance(text, str):
        raise RuleError(f"expected a CEL expression as a string, got {text!r}")
    if not text.strip():
        raise RuleError("empty expression")
    if len(text) > MAX_LENGTH:
        raise RuleError(f"longer than {MAX_LENGTH} characters ({len(text)})")
    if "\x00" in text:
        raise RuleError("contains a NUL character")
    return compile_expression(text)


@functools.lru_cache(maxsize=1024)
def compile_expression(text: str) -> Expression:
    """The compiled expression for ``text`` (cached per process: routes share it and a
    route cache refresh compiles nothing); raises RuleError for one that can't be used."""
    # Imported on first use: the package's __init__ loads its command line too
    # (prompt_toolkit), ~0.12 s of CPU with compiled bytecode (~0.25 s without) that every
    # process without a CEL rule would pay at start (tests/unit/test_startup_imports.py
    # pins that a server starts without it).
    import cel

    try:
        program = cel.compile(text)
    except ValueError as exc:
        raise RuleError(_parse_problem(str(exc))) from None
    except BaseException as exc:  # the Rust library's panics derive from BaseException
        if not _is_panic(exc):
            raise
        raise RuleError(f"the expression could not be parsed ({exc})") from None
    bound, nesting = _comprehensions(text)
    if nesting is not None:
        raise RuleError(nesting)
    refs = program.references()
    unknown = sorted(set(refs["variables"]) - set(VARIABLES) - bound)
    if unknown:
        raise RuleError(
            f"unknown variable {unknown[0]!r} (the variables are {', '.join(VARIABLES)})"
        )
    # Operators have names like "_+_", "-_", "@in": a function's is an identifier.
    named = [f for f in refs["functions"] if _FUNCTION_NAME.fullmatch(f)]
    strange = sorted(set(named) - FUNCTIONS)
    if strange:
        raise RuleError(
            f"unknown function {strange[0]!r} (CEL's standard functions: "
            f"{', '.join(sorted(FUNCTIONS))})"
        )
    used = frozenset(refs["variables"]) & set(VARIABLES)
    reads = _payload_reads(_blank_literals(text)) if "payload" in used else WHOLE
    return Expression(text=text, program=program, reads=reads, variables=used)


def _is_panic(exc: BaseException) -> bool:
    return type(exc).__name__ == "PanicException"


def _first_sentence(message: str) -> str:
    head = message.strip().splitlines()[0] if message.strip() else ""
    return head.split(". ")[0].rstrip(".")


def evaluate(expression: Expression, variables: Mapping[str, Any]) -> Any:
    """Evaluate ``expression`` with these variables; return its value as Python data,
    or raise EvalError saying why it has none for this event (a missing key, a type
    mismatch, a division by zero)."""
    given = {name: variables[name] for name in expression.variables if name in variables}
    if "payload" in given:
        given["payload"] = prune(given["payload"], expression.reads)
    try:
        return expression.program.execute(given)
    except KeyError as exc:
        raise EvalError(f"no such key: {exc}") from None
    except IndexError as exc:
        raise EvalError(f"no such index: {_first_sentence(str(exc))}") from None
    except TypeError as exc:
        raise EvalError(f"type mismatch: {_first_sentence(str(exc))}") from None
    except Exception as exc:  # noqa: BLE001 - whatever else the library raises is this event's
        raise EvalError(_first_sentence(str(exc)) or type(exc).__name__) from None
    except BaseException as exc:
        if not _is_panic(exc):
            raise
        raise EvalError(f"the evaluation failed ({_first_sentence(str(exc))})") from None
