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
Each tuple is a ``Node``: it also knows where its text is (``node.start``,
``node.end`` in the expression, and the expression's place in its file once
``locate`` has been called), so that every problem is reported at its position.

Limits (``MAX_LENGTH`` characters, ``MAX_DEPTH`` levels; ``set_limits`` raises them):
an expression longer, or nested deeper, is refused with an ExprError naming the
limit, before anything recursive runs — so no input reaches Python's recursion
limit. The depth of an expression is the height of its tree counting each pair of
parentheses as a level: ``((x))`` has depth 2, ``-x`` 1, ``a + b + c`` 2.

An operation whose result cannot be a finite number — division by zero, the log of
a non-positive number, the square root of a negative one, 0 to a negative power, a
negative number to a fractional power, or a result beyond float64 (``2**2**2**2**2**10``)
— is a ``DomainError`` naming the operation and where it is written. ``parse`` refuses
such an operation when its operands are constants (``check_constant``); ``evaluate``
raises it when the values it is given make it so; ``check_program`` runs a scalar graph
on its inputs. No NumPy warning is ever emitted.
"""

from __future__ import annotations

import re

import numpy as np

import refimpl

MAX_LENGTH = 1000  # characters of one expression
MAX_DEPTH = 50  # levels of nesting (see the module docstring)


def set_limits(length=None, depth=None):
    """Raise (or lower) the expression limits: ``length`` characters, ``depth`` levels.

    Depth is bounded by 100 whatever is asked: deeper trees would reach Python's recursion limit
    in the engines that walk them.
    """
    global MAX_LENGTH, MAX_DEPTH
    if length is not None:
        MAX_LENGTH = int(length)
    if depth is not None:
        MAX_DEPTH = min(int(depth), 100)


class ExprError(ValueError):
    """A problem at character ``offset`` of the expression (a syntax error, a limit, a constant out of domain)."""

    def __init__(self, message, offset):
        super().__init__(message)
        self.message, self.offset = message, offset


class Source:
    """The text of one expression and, once known, where it starts in its file."""

    __slots__ = ("text", "path", "line", "col")

    def __init__(self, text, path=None, line=None, col=None):
        self.text, self.path, self.line, self.col = text, path, line, col

    def where(self, offset):
        """``file:line:col`` of character ``offset``, or None when the file position is not known."""
        if self.path is None:
            return None
        return f"{self.path}:{self.line}:{self.col + offset}"


class Node(tuple):
    """One node of an expression tree: the tuple described above, which also knows its text."""

    source = None  # the Source of the whole expression
    start = 0  # node.source.text[node.start:node.end] is this node's text
    end = 0
    depth = 0

    @property
    def text(self):
        return self.source.text[self.start : self.end].strip() if self.source is not None else unparse(self)

    def where(self):
        """``file:line:col`` of this node, or None."""
        return self.source.where(self.start) if self.source is not None else None


def _node(items, source, start, end, depth):
    n = Node(items)
    n.source, n.start, n.end, n.depth = source, start, end, depth
    return n


class DomainError(ArithmeticError):
    """An operation whose result is not a finite number, at a node of the tree."""

    def __init__(self, problem, node):
        self.problem, self.node, self.gate = problem, node, None
        super().__init__(problem)

    def __str__(self):
        where = self.node.where() if isinstance(self.node, Node) else None
        text = self.node.text if isinstance(self.node, Node) else unparse(self.node)
        return f"{self.problem} in {text!r}" + (f" ({where})" if where else "")


def locate(tree, path, line, col):
    """Record that the expression of ``tree`` starts at ``path:line:col`` (its first character)."""
    if isinstance(tree, Node) and tree.source is not None:
        tree.source.path, tree.source.line, tree.source.col = str(path), line, col
    return tree


def located(tree):
    """Whether ``tree``'s file position is known."""
    return isinstance(tree, Node) and tree.source is not None and tree.source.path is not None


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>\*\*|[-+*/^@(),\[\]·×−])
""",
    re.VERBOSE,
)

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
            out.append((m.lastgroup, tok, pos, m.end()))
        pos = m.end()
    out.append(("end", "", len(text), len(text)))
    return out


def _too_deep(offset):
    return ExprError(
        f"the expression is nested more than {MAX_DEPTH} levels deep (each pair of parentheses, "
        f"function call, sign, power and chained operation is a level); the limit is {MAX_DEPTH} "
        f"(expression depth)",
        offset,
    )


class _Parser:
    def __init__(self, text):
        self.source = Source(text)
        self.toks = _tokens(text)
        self.i = 0
        self.level = 0  # nesting of the recursive calls: bounded before it grows

    def peek(self):
        return self.toks[self.i]

    def take(self, want=None):
        kind, tok, pos, end = self.toks[self.i]
        if want is not None and tok != want:
            found = "the end" if kind == "end" else repr(tok)
            raise ExprError(f"expected {want!r} but found {found}", pos)
        self.i += 1
        return kind, tok, pos, end

    def last_end(self):
        return self.toks[self.i - 1][3]

    def make(self, items, start, children, pos):
        depth = 1 + max((c.depth for c in children), default=-1)
        if depth > MAX_DEPTH:
            raise _too_deep(pos)
        return _node(items, self.source, start, self.last_end(), depth)

    def enter(self, pos):
        self.level += 1
        if self.level > MAX_DEPTH:
            raise _too_deep(pos)

    def expression(self):
        node = self.term()
        while self.peek()[1] in ("+", "-") and self.peek()[0] == "op":
            op, pos = self.take()[1], self.peek()[2]
            right = self.term()
            node = self.make(("add" if op == "+" else "sub", node, right), node.start, (node, right), pos)
        return node

    def term(self):
        node = self.unary()
        ops = {"*": "mul", "/": "div", "@": "matmul"}
        while self.peek()[0] == "op" and self.peek()[1] in ops:
            op, pos = ops[self.take()[1]], self.peek()[2]
            right = self.unary()
            node = self.make((op, node, right), node.start, (node, right), pos)
        return node

    def unary(self):
        kind, tok, pos, _ = self.peek()
        if kind == "op" and tok in ("-", "+"):
            self.take()
            self.enter(pos)
            inner = self.unary()
            self.level -= 1
            if tok == "+":
                return inner
            return self.make(("neg", inner), pos, (inner,), pos)
        return self.power()

    def power(self):
        node = self.atom()
        if self.peek()[:2] == ("op", "^"):
            pos = self.take()[2]
            self.enter(pos)
            exponent = self.unary()
            self.level -= 1
            node = self.make(("pow", node, exponent), node.start, (node, exponent), pos)
        return node

    def _items(self, close, pos):
        self.enter(pos)
        items = [self.expression()]
        while self.peek()[1] == ",":
            self.take()
            items.append(self.expression())
        self.take(close)
        self.level -= 1
        return items

    def atom(self):
        kind, tok, pos, end = self.take()
        if kind == "num":
            value = float(tok)
            if not np.isfinite(value):
                raise ExprError(f"the number {tok} is too large for a float64 (the largest is about 1.8e308)", pos)
            return _node(("num", value), self.source, pos, end, 0)
        if kind == "name":
            if self.peek()[1] == "(":
                if tok not in FUNCTIONS:
                    raise ExprError(f"unknown function {tok!r}; known: {', '.join(FUNCTIONS)}", pos)
                self.take("(")
                args = self._items(")", pos)
                return self.make(("call", tok, *args), pos, args, pos)
            return _node(("var", tok), self.source, pos, end, 0)
        if tok == "(":
            self.enter(pos)
            node = self.expression()
            self.take(")")
            self.level -= 1
            if node.depth + 1 > MAX_DEPTH:  # the parentheses are a level
                raise _too_deep(pos)
            # the group is the inner node with its parentheses: its text is "(…)"
            return _node(tuple(node), self.source, pos, self.last_end(), node.depth + 1)
        if tok == "[":
            items = self._items("]", pos)
            return self.make(("list", *items), pos, items, pos)
        found = "the end of the expression" if kind == "end" else repr(tok)
        raise ExprError(f"expected a number, a name or '(' but found {found}", pos)


def _nesting_beyond_limit(text):
    """The offset of the first bracket nested deeper than MAX_DEPTH, else None (a loop, no recursion)."""
    level = 0
    for i, ch in enumerate(text):
        if ch in "([":
            level += 1
            if level > MAX_DEPTH:
                return i
        elif ch in ")]":
            level -= 1
    return None


def parse(text: str, path=None, line=None, col=None):
    """The expression tree of ``text``; ExprError (with the offset) on a syntax error, a limit or a
    constant operation out of its domain (``check_constant``).

    ``path``, ``line``, ``col``: where the expression's first character is in its file (see ``locate``).
    """
    if len(text) > MAX_LENGTH:
        deep = _nesting_beyond_limit(text[: 100 * MAX_LENGTH])
        if deep is not None:
            raise _too_deep(deep)
        raise ExprError(
            f"the expression is {len(text)} characters long; the limit is {MAX_LENGTH} (expression length)", 0
        )
    p = _Parser(text)
    node = p.expression()
    kind, tok, pos, _ = p.peek()
    if kind != "end":
        raise ExprError(f"unexpected {tok!r} after a complete expression", pos)
    if path is not None:
        locate(node, path, line, col)
    check_constant(node)
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


def unparse(node):
    """Plain text of a tree (for a node that does not carry its own text)."""
    kind = node[0]
    if kind == "num":
        return f"{node[1]:g}"
    if kind == "var":
        return node[1]
    if kind == "neg":
        return f"-{unparse(node[1])}"
    if kind == "call":
        return f"{node[1]}(" + ", ".join(unparse(n) for n in node[2:]) + ")"
    if kind == "list":
        return "[" + ", ".join(unparse(n) for n in node[1:]) + "]"
    op = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "^", "matmul": "@"}[kind]
    return f"({unparse(node[1])} {op} {unparse(node[2])})"


# ---------------------------------------------------------------- evaluation


def _sig(u):
    e = np.exp(-np.abs(u))
    return np.where(u >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _mean(u):
    if np.size(u) == 0:
        raise ValueError("mean of no values")
    return np.mean(u)


_DEFAULT = refimpl.DEFAULT_PARAM

_CALL = {
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "sum": np.sum,
    "mean": _mean,
    "T": lambda u: np.transpose(u),
    "identity": lambda u: u,
    "sigmoid": _sig,
    "dsigmoid": lambda u: _sig(u) * (1 - _sig(u)),
    "tanh": np.tanh,
    "dtanh": lambda u: 1 - np.tanh(u) ** 2,
    "relu": lambda u: np.maximum(u, 0.0),
    "drelu": lambda u: (np.asarray(u) > 0).astype(float),
    # α (β for swish): the case's own as a second argument, e.g. leaky_relu(z1, 0.1); else refimpl's default
    "leaky_relu": lambda u, alpha=_DEFAULT["leaky_relu"]: np.where(u > 0, u, alpha * u),
    "prelu": lambda u, alpha=_DEFAULT["prelu"]: np.where(u > 0, u, alpha * u),
    "swish": lambda u, beta=_DEFAULT["swish"]: u * _sig(beta * u),
    "softmax": lambda u: np.exp(u - np.max(u)) / np.sum(np.exp(u - np.max(u))),
    "outer": np.outer,
}
_BIN = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power, "matmul": np.matmul}


def _finite(v):
    try:
        return bool(np.all(np.isfinite(np.asarray(v, dtype=float))))
    except (TypeError, ValueError):
        return True  # not a numeric array: not this check's business


def _first(mask, values):
    """The first value of ``values`` where ``mask`` holds, as text."""
    v = np.broadcast_to(np.asarray(values, dtype=float), np.shape(mask))[np.asarray(mask)]
    return f"{float(v.reshape(-1)[0]):g}"


def _problem(kind, fn, args, result):
    """Why an operation on finite operands gave a result that is not finite."""
    a = [np.asarray(x, dtype=float) for x in args]
    if kind == "div" and np.any(a[1] == 0):
        return "division by zero"
    if kind == "call" and fn == "log" and np.any(a[0] <= 0):
        return f"log of a non-positive number ({_first(a[0] <= 0, a[0])})"
    if kind == "call" and fn == "sqrt" and np.any(a[0] < 0):
        return f"square root of a negative number ({_first(a[0] < 0, a[0])})"
    if kind == "pow":
        base, exponent = np.broadcast_arrays(a[0], a[1])
        zero = (base == 0) & (exponent < 0)
        if np.any(zero):
            return f"0 to a negative power ({_first(zero, exponent)})"
        fractional = (base < 0) & (exponent != np.round(exponent))
        if np.any(fractional):
            return f"a negative number ({_first(fractional, base)}) to a fractional power"
    if np.any(np.isnan(np.asarray(result, dtype=float))):
        return "a result that is not a number"
    return "overflow: the result is beyond float64's range (±1.8e308)"


def _apply(node, kind, fn, args):
    with np.errstate(all="ignore"):
        result = (_CALL[fn] if kind == "call" else _BIN[kind])(*args)
    if not _finite(result) and all(_finite(x) for x in args):
        raise DomainError(_problem(kind, fn, args, result), node)
    return result


def evaluate(node, env):
    """Compute an expression tree with NumPy; ``env`` maps names to numbers or arrays.

    DomainError for an operation whose result is not finite although its operands are.
    """
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
        return _apply(node, kind, node[1], [evaluate(n, env) for n in node[2:]])
    return _apply(node, kind, None, [evaluate(node[1], env), evaluate(node[2], env)])


def _constant(node):
    """The value of a subtree made of constants only, else None; DomainError where one fails."""
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "var":
        return None
    children = node[2:] if kind == "call" else node[1:]
    values = [_constant(c) for c in children]
    if kind == "div" and values[1] is not None and np.any(np.asarray(values[1], dtype=float) == 0):
        raise DomainError("division by zero", node)  # whatever the numerator is
    if any(v is None for v in values):
        return None
    if kind == "neg":
        return -np.asarray(values[0])
    if kind == "list":
        return np.array(values, dtype=float)
    try:
        return _apply(node, kind, node[1] if kind == "call" else None, values)
    except (TypeError, ValueError):
        return None  # e.g. shapes that do not fit: reported where the expression is evaluated


def check_constant(tree):
    """Refuse an operation whose operands are constants and whose result cannot be finite.

    ExprError at the offset of the operation in the expression (``1/0``, ``log(-1)``, ``x / (2 - 2)``,
    ``2**2**2**2**2**10``); the loader turns it into ``file:line:col`` as it does syntax errors.
    """
    try:
        _constant(tree)
    except DomainError as exc:
        node = exc.node
        text = node.text if isinstance(node, Node) else unparse(node)
        raise ExprError(f"{exc.problem} in {text!r}", node.start if isinstance(node, Node) else 0) from None


def check_program(program, inputs, offsets=None):
    """Run a scalar graph on its inputs (plus ``offsets``, as the engines do); DomainError where a gate
    cannot give a finite value (a division by an input that is 0, the log of a negative node, …), with
    ``exc.gate`` the node's name and ``exc.node.start`` the offset of the failing operation in its text.

    Returns {name: value}. ``program`` is [(name, tree)], ``inputs`` {name: number}.
    """
    offsets = offsets or {}
    env = {k: np.float64(v) + offsets.get(k, 0.0) for k, v in inputs.items()}
    for name, tree in program:
        try:
            value = evaluate(tree, env)
        except DomainError as exc:
            exc.gate = name  # the node of the graph whose expression fails
            raise
        if name in offsets:
            value = value + offsets[name]
        env[name] = np.float64(value)
    return env
