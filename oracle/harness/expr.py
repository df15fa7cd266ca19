"""A small, safe expression language, parsed by recursive descent (no eval, no exec).

    expression := term (("+" | "-") term)*
    term       := unary (("*" | "·" | "×" | "/" | "@") unary)*
    unary      := "-" unary | power
    power      := atom (("^" | "**") unary)?          right-associative: -2^2 = -(2^2)
    atom       := number | name | name "(" expression ("," expression)* ")"
                | "(" expression ")" | "[" expression ("," expression)* "]"

The result is a tree of tuples — ("num", v), ("var", name), ("neg", u),
("add"|"sub"|"mul"|"div"|"pow"|"matmul", u, v), ("call", function, u, ...),
("list", u, ...) — which the engines walk (computational graphs use the
scalar part: + − · ÷ ^, exp, log and the elementwise activations) and which
``evaluate`` computes with NumPy arrays for the printed formulas of a case.
"""
from __future__ import annotations

import re

import numpy as np


class ExprError(ValueError):
    """A syntax error at character ``offset`` of the expression."""

    def __init__(self, message, offset):
        super().__init__(message)
        self.message, self.offset = message, offset


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>\*\*|[-+*/^@(),\[\]·×−])
""", re.VERBOSE)

SCALAR_FUNCTIONS = ("exp", "log", "identity", "sigmoid", "tanh", "relu", "leaky_relu", "prelu", "swish")
ARRAY_FUNCTIONS = ("sqrt", "abs", "sum", "mean", "T", "dsigmoid", "dtanh", "drelu", "softmax", "outer")
FUNCTIONS = SCALAR_FUNCTIONS + ARRAY_FUNCTIONS


def _tokens(text):
    pos = 0
    out = []
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ExprError(f"unexpected character {text[pos]!r}", pos)
        if m.lastgroup != "ws":
            tok = m.group()
            tok = {"·": "*", "×": "*", "−": "-", "**": "^"}.get(tok, tok)
            out.append((m.lastgroup, tok, pos))
        pos = m.end()
    out.append(("end", "", len(text)))
    return out


class _Parser:
    def __init__(self, text):
        self.toks = _tokens(text)
        self.i = 0

    def peek(self):
        return self.toks[self.i]

    def take(self, want=None):
        kind, tok, pos = self.toks[self.i]
        if want is not None and tok != want:
            found = "the end" if kind == "end" else repr(tok)
            raise ExprError(f"expected {want!r} but found {found}", pos)
        self.i += 1
        return kind, tok, pos

    def expression(self):
        node = self.term()
        while self.peek()[1] in ("+", "-") and self.peek()[0] == "op":
            op = self.take()[1]
            node = ("add" if op == "+" else "sub", node, self.term())
        return node

    def term(self):
        node = self.unary()
        ops = {"*": "mul", "/": "div", "@": "matmul"}
        while self.peek()[0] == "op" and self.peek()[1] in ops:
            op = ops[self.take()[1]]
            node = (op, node, self.unary())
        return node

    def unary(self):
        if self.peek()[:2] == ("op", "-"):
            self.take()
            return ("neg", self.unary())
        if self.peek()[:2] == ("op", "+"):
            self.take()
            return self.unary()
        return self.power()

    def power(self):
        node = self.atom()
        if self.peek()[:2] == ("op", "^"):
            self.take()
            node = ("pow", node, self.unary())
        return node

    def atom(self):
        kind, tok, pos = self.take()
        if kind == "num":
            return ("num", float(tok))
        if kind == "name":
            if self.peek()[1] == "(":
                if tok not in FUNCTIONS:
                    raise ExprError(f"unknown function {tok!r}; known: {', '.join(FUNCTIONS)}", pos)
                self.take("(")
                args = [self.expression()]
                while self.peek()[1] == ",":
                    self.take()
                    args.append(self.expression())
                self.take(")")
                return ("call", tok, *args)
            return ("var", tok)
        if tok == "(":
            node = self.expression()
            self.take(")")
            return node
        if tok == "[":
            items = [self.expression()]
            while self.peek()[1] == ",":
                self.take()
                items.append(self.expression())
            self.take("]")
            return ("list", *items)
        found = "the end of the expression" if kind == "end" else repr(tok)
        raise ExprError(f"expected a number, a name or '(' but found {found}", pos)


def parse(text: str):
    """The expression tree of ``text``; ExprError (with the offset) on a syntax error."""
    p = _Parser(text)
    node = p.expression()
    kind, tok, pos = p.peek()
    if kind != "end":
        raise ExprError(f"unexpected {tok!r} after a complete expression", pos)
    return node


def names(node):
    """The variable names an expression uses."""
    if node[0] == "var":
        return {node[1]}
    if node[0] == "num":
        return set()
    start = 2 if node[0] == "call" else 1
    return set().union(*(names(n) for n in node[start:]))


def check_scalar(node):
    """Raise ValueError if the tree uses anything outside the scalar graph language."""
    if node[0] in ("matmul", "list"):
        raise ValueError("'@' and [...] are not allowed in a scalar graph")
    if node[0] == "call":
        if node[1] not in SCALAR_FUNCTIONS:
            raise ValueError(f"function {node[1]!r} is not a scalar gate; use one of {', '.join(SCALAR_FUNCTIONS)}")
        if len(node) != 3:
            raise ValueError(f"{node[1]} takes one argument")
    for child in node[1:]:
        if isinstance(child, tuple):
            check_scalar(child)


def _sig(u):
    e = np.exp(-np.abs(u))
    return np.where(u >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


_CALL = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs, "sum": np.sum, "mean": np.mean,
    "T": lambda u: np.transpose(u), "identity": lambda u: u, "sigmoid": _sig,
    "dsigmoid": lambda u: _sig(u) * (1 - _sig(u)), "tanh": np.tanh,
    "dtanh": lambda u: 1 - np.tanh(u) ** 2, "relu": lambda u: np.maximum(u, 0.0),
    "drelu": lambda u: (np.asarray(u) > 0).astype(float),
    "leaky_relu": lambda u: np.where(u > 0, u, 0.01 * u), "prelu": lambda u: np.where(u > 0, u, 0.25 * u),
    "swish": lambda u: u * _sig(u), "softmax": lambda u: np.exp(u - np.max(u)) / np.sum(np.exp(u - np.max(u))),
    "outer": np.outer,
}
_BIN = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
        "pow": np.power, "matmul": np.matmul}


def evaluate(node, env):
    """Compute an expression tree with NumPy; ``env`` maps names to numbers or arrays."""
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "var":
        return env[node[1]]
    if kind == "neg":
        return -evaluate(node[1], env)
    if kind == "list":
        return np.array([evaluate(n, env) for n in node[1:]], dtype=float)
    if kind == "call":
        return _CALL[node[1]](*(evaluate(n, env) for n in node[2:]))
    with np.errstate(all="ignore"):
        return _BIN[kind](evaluate(node[1], env), evaluate(node[2], env))
