"""``triggerPolicy.condition``: the subset of CEL that KFP's compiler emits for ``If``/``Elif``/``Else``.

KFP writes conditions such as::

    int(inputs.parameter_values['pipelinechannel--n']) > 5
    !(inputs.parameter_values['pipelinechannel--coin'] == 'heads') && ...

(see ``kfp/compiler/compiler_utils.py``; the backend evaluates them with
cel-go). This module parses exactly that language -- ``inputs.parameter_values
['x']``, string/number/bool/null literals, ``int()``, ``double()``,
``string()``, ``==``, ``!=``, ``<``, ``>``, ``<=``, ``>=``, ``!``, ``&&``,
``||``, unary ``-`` and parentheses -- with a small recursive-descent parser.
Nothing is passed to ``eval``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ConditionError(ValueError):
    """A condition that cannot be parsed or evaluated; the message says where."""


@dataclass(frozen=True)
class _Tok:
    kind: str  # "str", "num", "ident", "op", "end"
    value: Any
    pos: int


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>\d+\.\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d+u?)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||[<>!()\[\].,-])
    """,
    re.VERBOSE,
)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


def _unquote(lit: str) -> str:
    body = lit[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def tokenize(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ConditionError(f"unexpected character {text[pos]!r} at {pos} in {text!r}")
        kind = m.lastgroup or ""
        raw = m.group(kind)
        if kind == "num":
            digits = raw.rstrip("u")
            value: Any = float(digits) if any(c in digits for c in ".eE") else int(digits)
            out.append(_Tok("num", value, pos))
        elif kind == "str":
            out.append(_Tok("str", _unquote(raw), pos))
        elif kind in ("ident", "op"):
            out.append(_Tok(kind, raw, pos))
        pos = m.end()
    out.append(_Tok("end", None, len(text)))
    return out


# AST nodes are tuples: ("lit", v), ("param", name), ("call", fn, arg),
# ("not", x), ("neg", x), ("and", a, b), ("or", a, b), ("cmp", op, a, b).

_FUNCS = {"int", "double", "string", "bool"}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, kind: str, value: Any = None) -> _Tok:
        tok = self.take()
        if tok.kind != kind or (value is not None and tok.value != value):
            want = value if value is not None else kind
            got = tok.value if tok.kind != "end" else "end of condition"
            raise ConditionError(f"expected {want!r} at {tok.pos}, got {got!r} in {self.text!r}")
        return tok

    def parse(self) -> tuple[Any, ...]:
        node = self.or_expr()
        if self.peek().kind != "end":
            tok = self.peek()
            raise ConditionError(f"unexpected {tok.value!r} at {tok.pos} in {self.text!r}")
        return node

    def or_expr(self) -> tuple[Any, ...]:
        node = self.and_expr()
        while self.peek().kind == "op" and self.peek().value == "||":
            self.take()
            node = ("or", node, self.and_expr())
        return node

    def and_expr(self) -> tuple[Any, ...]:
        node = self.rel_expr()
        while self.peek().kind == "op" and self.peek().value == "&&":
            self.take()
            node = ("and", node, self.rel_expr())
        return node

    def rel_expr(self) -> tuple[Any, ...]:
        node = self.unary()
        tok = self.peek()
        if tok.kind == "op" and tok.value in ("==", "!=", "<", ">", "<=", ">="):
            self.take()
            node = ("cmp", tok.value, node, self.unary())
        return node

    def unary(self) -> tuple[Any, ...]:
        tok = self.peek()
        if tok.kind == "op" and tok.value == "!":
            self.take()
            return ("not", self.unary())
        if tok.kind == "op" and tok.value == "-":
            self.take()
            return ("neg", self.unary())
        return self.primary()

    def primary(self) -> tuple[Any, ...]:
        tok = self.take()
        if tok.kind in ("num", "str"):
            return ("lit", tok.value)
        if tok.kind == "op" and tok.value == "(":
            node = self.or_expr()
            self.expect("op", ")")
            return node
        if tok.kind == "ident":
            if tok.value in ("true", "false"):
                return ("lit", tok.value == "true")
            if tok.value == "null":
                return ("lit", None)
            if tok.value in _FUNCS:
                self.expect("op", "(")
                arg = self.or_expr()
                self.expect("op", ")")
                return ("call", tok.value, arg)
            if tok.value == "inputs":
                self.expect("op", ".")
                field = self.expect("ident")
                if field.value != "parameter_values":
                    raise ConditionError(
                        f"only inputs.parameter_values is supported (got inputs.{field.value}) "
                        f"in {self.text!r}"
                    )
                self.expect("op", "[")
                name = self.expect("str")
                self.expect("op", "]")
                return ("param", name.value)
        got = tok.value if tok.kind != "end" else "end of condition"
        raise ConditionError(f"unexpected {got!r} at {tok.pos} in {self.text!r}")


def parse(text: str) -> tuple[Any, ...]:
    """The syntax tree of a condition; raises :class:`ConditionError` with the position."""
    return _Parser(text).parse()


def parameters_used(text: str) -> set[str]:
    """Names read through ``inputs.parameter_values[...]``."""
    found: set[str] = set()

    def walk(node: tuple[Any, ...]) -> None:
        if node[0] == "param":
            found.add(node[1])
        for child in node[1:]:
            if isinstance(child, tuple):
                walk(child)

    walk(parse(text))
    return found


def evaluate(text: str, values: Mapping[str, Any]) -> bool:
    """Evaluate a condition over the task's resolved input parameters."""
    result = _eval(parse(text), values, text)
    if not isinstance(result, bool):
        raise ConditionError(f"condition {text!r} gives {result!r}, not true or false")
    return result


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _as_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and math.isfinite(v) and v == int(v):
        return str(int(v))
    return str(v)


def _compare(op: str, a: Any, b: Any, text: str) -> bool:
    # KFP hands every parameter to CEL as a protobuf Value, where ints and
    # doubles are one number type; compare numbers as numbers. A string
    # against a number or bool (a loop item '1' vs 1) compares their text.
    if op in ("==", "!="):
        if _num(a) and _num(b):
            eq = float(a) == float(b)
        elif type(a) is type(b) or a is None or b is None:
            eq = a == b
        else:
            eq = _as_text(a) == _as_text(b)
        return eq if op == "==" else not eq
    if _num(a) and _num(b):
        x, y = float(a), float(b)
    elif isinstance(a, str) and isinstance(b, str):
        x, y = a, b  # type: ignore[assignment]
    else:
        try:
            x, y = float(a), float(b)
        except (TypeError, ValueError):
            raise ConditionError(f"cannot compare {a!r} {op} {b!r} in {text!r}") from None
    if op == "<":
        return x < y
    if op == ">":
        return x > y
    if op == "<=":
        return x <= y
    return x >= y


def _eval(node: tuple[Any, ...], values: Mapping[str, Any], text: str) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "param":
        name = node[1]
        if name not in values:
            raise ConditionError(f"condition {text!r} reads {name!r}, which has no value")
        return values[name]
    if kind == "not":
        v = _eval(node[1], values, text)
        if not isinstance(v, bool):
            raise ConditionError(f"'!' needs true or false, got {v!r} in {text!r}")
        return not v
    if kind == "neg":
        v = _eval(node[1], values, text)
        if not _num(v):
            raise ConditionError(f"'-' needs a number, got {v!r} in {text!r}")
        return -v
    if kind in ("and", "or"):
        left = _eval(node[1], values, text)
        if not isinstance(left, bool):
            raise ConditionError(f"'{'&&' if kind == 'and' else '||'}' needs booleans in {text!r}")
        if kind == "and" and not left:
            return False
        if kind == "or" and left:
            return True
        right = _eval(node[2], values, text)
        if not isinstance(right, bool):
            raise ConditionError(f"'{'&&' if kind == 'and' else '||'}' needs booleans in {text!r}")
        return right
    if kind == "cmp":
        return _compare(node[1], _eval(node[2], values, text), _eval(node[3], values, text), text)
    if kind == "call":
        return _call(node[1], _eval(node[2], values, text), text)
    raise ConditionError(f"cannot evaluate {text!r}")  # pragma: no cover


def _call(fn: str, v: Any, text: str) -> Any:
    try:
        if fn == "int":
            if isinstance(v, bool):
                raise ValueError
            if isinstance(v, str):
                s = v.strip()
                try:
                    return int(s)
                except ValueError:
                    return int(float(s))
            return int(v)
        if fn == "double":
            if isinstance(v, bool):
                raise ValueError
            return float(v)
        if fn == "string":
            return _as_text(v)
        if fn == "bool":
            if isinstance(v, bool):
                return v
            if isinstance(v, str) and v.lower() in ("true", "false"):
                return v.lower() == "true"
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise ConditionError(f"{fn}({v!r}) is not possible in {text!r}") from None
    raise ConditionError(f"unknown function {fn} in {text!r}")  # pragma: no cover
