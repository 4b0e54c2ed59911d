"""The cost budget of a CEL expression, checked before it is compiled.

The CEL evaluator cannot be interrupted (it runs in Rust, holding the GIL), and guards and
actions run inside the write transaction, so what an expression may cost is decided when its
definition is validated, from its text, and what it may be given is bounded at run time
(:func:`engine.core.limits.value_excess`). The CEL bindings expose no syntax tree; the text is
read with a small lexer that follows CEL's grammar for strings and comments, which is all it
takes to find comprehensions and what they range over.

The measure is a *degree*: how many times over the elements of a collection (at most
``VALUE_MAX_ITEMS``) the evaluator may go. For a comprehension ``range.macro(x, body)``:

- ``all``, ``exists``, ``exists_one`` visit each element once: ``1 + degree(body)``;
- ``map`` and ``filter`` also copy their growing result at every element (measured: quadratic
  time in common-expression-language 0.10): at least 2;
- the range is evaluated once before: its degree adds to the cost, it does not multiply it;
- ``x in list`` in a body goes over the list: it counts as a comprehension inside.

Other operators cost time linear in their operands (``==`` on lists, ``+`` on strings), which
the run-time limits on values bound; docs/definitions.md has the measured worst cases.

So ``degree = max(degree(range), own, 1 + degree(body))`` with ``own`` 1 or 2.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.core.limits import (
    EXPRESSION_MAX_CHARS,
    EXPRESSION_MAX_COMPREHENSIONS,
    EXPRESSION_MAX_LITERAL_ITEMS,
    EXPRESSION_MAX_NESTING,
)
from engine.errors import ExpressionTooCostly

_LINEAR = frozenset({"all", "exists", "exists_one"})
_QUADRATIC = frozenset({"map", "filter"})
_OPEN = {")": "(", "]": "[", "}": "{"}


@dataclass
class _Token:
    kind: str  # "ident", "punct", "literal"
    text: str
    pos: int
    match: int = -1  # for brackets: the index of the matching one


def _string_end(source: str, start: int) -> int:
    """The index after the string literal starting at ``start`` (at its prefix or quote)."""
    i = start
    raw = False
    while source[i] in "rRbB":
        raw = raw or source[i] in "rR"
        i += 1
    quote = source[i]
    triple = source.startswith(quote * 3, i)
    close = quote * 3 if triple else quote
    i += len(close)
    while i < len(source):
        if source.startswith(close, i):
            return i + len(close)
        if source[i] == "\\" and not raw:
            i += 2
            continue
        if not triple and source[i] in "\r\n":
            break  # an unterminated string: CEL refuses it, the lexer just stops here
        i += 1
    return len(source)


def _tokens(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if c.isspace():
            i += 1
        elif source.startswith("//", i):
            end = source.find("\n", i)
            i = n if end < 0 else end
        elif c in "'\"" or (c in "rRbB" and _starts_string(source, i) and not _in_word(source, i)):
            end = _string_end(source, i)
            tokens.append(_Token("literal", source[i:end], i))
            i = end
        elif c.isalpha() or c == "_":
            j = i
            while j < n and (source[j].isalnum() or source[j] == "_"):
                j += 1
            tokens.append(_Token("ident", source[i:j], i))
            i = j
        elif c.isdigit():
            j = i
            while j < n and (source[j].isalnum() or source[j] in "._"):
                j += 1
            tokens.append(_Token("literal", source[i:j], i))
            i = j
        else:
            tokens.append(_Token("punct", c, i))
            i += 1
    return tokens


def _starts_string(source: str, i: int) -> bool:
    j = i
    while j < len(source) and j - i < 2 and source[j] in "rRbB":
        j += 1
    return j < len(source) and source[j] in "'\""


def _in_word(source: str, i: int) -> bool:
    return i > 0 and (source[i - 1].isalnum() or source[i - 1] == "_")


def _match_brackets(tokens: list[_Token]) -> int:
    """Pair the brackets; return the most items one list or map literal has."""
    stack: list[int] = []
    items: list[int] = []
    most = 0
    for index, token in enumerate(tokens):
        if token.kind != "punct":
            continue
        if token.text in "([{":
            stack.append(index)
            items.append(0 if tokens[min(index + 1, len(tokens) - 1)].text in ")]}" else 1)
        elif token.text == "," and stack:
            items[-1] += 1
        elif token.text in ")]}" and stack and tokens[stack[-1]].text == _OPEN[token.text]:
            opened = stack.pop()
            count = items.pop()
            if token.text != ")":
                most = max(most, count)
            tokens[opened].match, token.match = index, opened
    return most


@dataclass
class _Comprehension:
    macro: str
    start: int  # first token of its range
    dot: int
    end: int  # its closing parenthesis
    degree: int = 0


def _range_start(tokens: list[_Token], dot: int) -> int:
    """The first token of the postfix expression a ``.macro(`` is called on."""
    i = dot - 1
    while i >= 0:
        token = tokens[i]
        if token.kind == "punct" and token.text in ")]}" and token.match >= 0:
            i = token.match
        elif token.kind not in ("ident", "literal"):
            return i + 1
        before = tokens[i - 1] if i > 0 else None
        if before is None:
            return i
        if before.kind == "punct" and before.text == ".":
            i -= 2
        elif token.kind == "punct" and (
            before.kind == "ident" or (before.kind == "punct" and before.text in ")]}")
        ):
            i -= 1  # a call f(...) or an index x[...]: part of the same chain
        else:
            return i
    return 0


def _comprehensions(tokens: list[_Token]) -> list[_Comprehension]:
    found = []
    for i in range(1, len(tokens) - 1):
        token, dot, paren = tokens[i], tokens[i - 1], tokens[i + 1]
        if (
            token.kind == "ident"
            and token.text in _LINEAR | _QUADRATIC
            and dot.text == "."
            and paren.text == "("
        ):
            end = paren.match if paren.match >= 0 else len(tokens) - 1
            found.append(_Comprehension(token.text, _range_start(tokens, i - 1), i - 1, end))
    return found


def degree(source: str) -> tuple[int, int]:
    """How many comprehensions ``source`` has, and its degree (see the module docstring)."""
    tokens = _tokens(source)
    _match_brackets(tokens)
    found = _comprehensions(tokens)
    # ``x in list`` goes over the list: in a body, it counts as one more level.
    member = [i for i, t in enumerate(tokens) if t.kind == "ident" and t.text == "in"]
    for c in sorted(found, key=lambda c: c.end - c.start):  # inner ones first
        inner = [o for o in found if o is not c and c.start <= o.start and o.end <= c.end]
        in_range = max((o.degree for o in inner if o.end < c.dot), default=0)
        in_body = max((o.degree for o in inner if o.dot > c.dot), default=0)
        if any(c.dot < i < c.end for i in member):
            in_body = max(in_body, 1)
        own = 2 if c.macro in _QUADRATIC else 1
        c.degree = max(in_range, own, 1 + in_body)
    return len(found), max((c.degree for c in found), default=0)


def check_budget(source: str, path: str) -> None:
    """Raise :class:`ExpressionTooCostly` if ``source`` exceeds the budget of
    :mod:`engine.core.limits`; checked before compiling (a long chain of operators
    overflows the compiler's stack)."""
    where = f"CEL expression at {path}"
    if len(source) > EXPRESSION_MAX_CHARS:
        raise ExpressionTooCostly(
            f"{where} has {len(source):,} characters; an expression may have at most "
            f"{EXPRESSION_MAX_CHARS:,}.",
            hint="Split the computation over several actions (set intermediate data fields), "
            "or use a parameter instead of a long literal.",
            path=path,
            limit=EXPRESSION_MAX_CHARS,
        )
    tokens = _tokens(source)
    literal = _match_brackets(tokens)
    if literal > EXPRESSION_MAX_LITERAL_ITEMS:
        raise ExpressionTooCostly(
            f"{where} writes a list or map of {literal} items; a literal may have at most "
            f"{EXPRESSION_MAX_LITERAL_ITEMS}, as many as a list in case data.",
            hint="Keep long lists in a parameter or in case data.",
            path=path,
            limit=EXPRESSION_MAX_LITERAL_ITEMS,
        )
    count, measured = degree(source)
    if measured > EXPRESSION_MAX_NESTING:
        raise ExpressionTooCostly(
            f"{where} nests comprehensions too deeply: its cost grows with the "
            f"{_power(measured)} power of the collections it reads (at most the "
            f"{_power(EXPRESSION_MAX_NESTING)} is allowed; map and filter count twice).",
            hint="Nest at most two all/exists (or one map/filter) inside one another; keep a "
            "precomputed result in a data field instead (an action can set it).",
            path=path,
            limit=EXPRESSION_MAX_NESTING,
        )
    if count > EXPRESSION_MAX_COMPREHENSIONS:
        raise ExpressionTooCostly(
            f"{where} has {count} comprehensions (all, exists, exists_one, map, filter); "
            f"an expression may have at most {EXPRESSION_MAX_COMPREHENSIONS}.",
            hint="Split it over several guards or actions.",
            path=path,
            limit=EXPRESSION_MAX_COMPREHENSIONS,
        )


def _power(n: int) -> str:
    return {1: "first", 2: "second", 3: "third"}.get(n, f"{n}th")
