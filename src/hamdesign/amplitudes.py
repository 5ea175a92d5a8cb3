"""Hopping amplitudes as products of simple factors of named real parameters.

Every hopping amplitude is ``c · Π_f g_f(p_{k_f})``: a complex constant ``c`` times factors
``g`` ∈ {p, cos p, sin p, e^{ip}, e^{−ip}} of the model's named real parameters ``p``. This covers
real hoppings (``t1``), complex ones (``t2*exp(i*phi)``), on-site energies (``-M``) and exchange
terms of classical spins (``J*sin(theta3)*exp(-i*phi3)``); it is linear-algebra friendly (one
gather and one product per evaluation) and it serialises as a readable string.

Text form (model files): factors joined by ``*``; a factor is a number (``-1``, ``0.5``, ``2j``,
``1e-3``), a parameter name, ``cos(name)``, ``sin(name)``, ``exp(i*name)`` or ``exp(-i*name)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ModelError

#: Factor kinds, in the order of their integer codes.
FACTOR_KINDS: tuple[str, ...] = ("one", "value", "cos", "sin", "exp_i", "exp_mi")
_KIND = {k: i for i, k in enumerate(FACTOR_KINDS)}

_NAME = r"[A-Za-z_][A-Za-z_0-9]*"
_PATTERNS = (
    (re.compile(rf"^cos\(\s*({_NAME})\s*\)$"), "cos"),
    (re.compile(rf"^sin\(\s*({_NAME})\s*\)$"), "sin"),
    (re.compile(rf"^exp\(\s*i\s*\*\s*({_NAME})\s*\)$"), "exp_i"),
    (re.compile(rf"^exp\(\s*-\s*i\s*\*\s*({_NAME})\s*\)$"), "exp_mi"),
    (re.compile(rf"^({_NAME})$"), "value"),
)


@dataclass(frozen=True)
class Amplitude:
    """``constant · Π factor(parameter)``; ``factors`` is a tuple of ``(kind, parameter_name)``."""

    constant: complex = 1.0
    factors: tuple[tuple[str, str], ...] = ()

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(name for _, name in self.factors)

    def is_real_valued(self) -> bool:
        """True when the amplitude is real for every real parameter value (needed on-site)."""
        return abs(complex(self.constant).imag) == 0 and all(k in ("value", "cos", "sin") for k, _ in self.factors)

    def conjugate(self) -> Amplitude:
        flip = {"exp_i": "exp_mi", "exp_mi": "exp_i"}
        return Amplitude(complex(self.constant).conjugate(), tuple((flip.get(k, k), n) for k, n in self.factors))

    def evaluate(self, values: dict[str, float]) -> complex:
        """The amplitude at given parameter values (plain Python; for files and checks)."""
        import cmath
        import math

        out = complex(self.constant)
        funcs = {
            "value": lambda x: x,
            "cos": math.cos,
            "sin": math.sin,
            "exp_i": lambda x: cmath.exp(1j * x),
            "exp_mi": lambda x: cmath.exp(-1j * x),
        }
        for kind, name in self.factors:
            out *= funcs[kind](values[name])
        return out

    def __str__(self) -> str:
        text = {"value": "{}", "cos": "cos({})", "sin": "sin({})", "exp_i": "exp(i*{})", "exp_mi": "exp(-i*{})"}
        parts = [text[k].format(n) for k, n in self.factors]
        c = complex(self.constant)
        if c != 1 or not parts:
            parts.insert(0, _format_number(c))
        return "*".join(parts)


def _format_number(c: complex) -> str:
    if c.imag == 0:
        return repr(float(c.real))
    if c.real == 0:
        return f"{c.imag!r}j"
    return f"({c.real!r}{c.imag:+}j)"


def parse_amplitude(value, *, where: str = "amplitude") -> Amplitude:
    """An :class:`Amplitude` from a number, a ``[re, im]`` pair or an expression string."""
    if isinstance(value, bool):
        raise ModelError(f"{where}: expected a number, [re, im] or an expression, got {value!r}")
    if isinstance(value, (int, float, complex)):
        return Amplitude(complex(value))
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return Amplitude(complex(value[0], value[1]))
        raise ModelError(f"{where}: a list amplitude must be [re, im], got {value!r}")
    if not isinstance(value, str) or not value.strip():
        raise ModelError(f"{where}: expected a number, [re, im] or an expression, got {value!r}")
    constant = 1.0 + 0j
    factors: list[tuple[str, str]] = []
    for token in _split_top_level(value, where):
        token = token.strip()
        negate = False
        while token.startswith("-") and not _is_number(token):
            negate, token = not negate, token[1:].strip()
        if negate:
            constant = -constant
        if _is_number(token):
            constant *= complex(token.replace(" ", "").replace("i", "j"))
            continue
        for pattern, kind in _PATTERNS:
            m = pattern.match(token)
            if m:
                factors.append((kind, m.group(1)))
                break
        else:
            raise ModelError(
                f"{where}: cannot read factor {token!r} in {value!r} (allowed: numbers, NAME, cos(NAME), "
                "sin(NAME), exp(i*NAME), exp(-i*NAME) joined by *)"
            )
    return Amplitude(constant, tuple(factors))


_REAL = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_NUMBER = re.compile(rf"^(?:{_REAL}[ij]?|\(\s*{_REAL}\s*[+-]\s*(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[ij]\s*\))$")


def _is_number(token: str) -> bool:
    """A real or imaginary literal (``2``, ``-0.5``, ``1e-3``, ``2j``, ``2i``) or ``(a+bj)``; never a name."""
    return bool(_NUMBER.match(token.strip().replace(" ", "")))


def _split_top_level(text: str, where: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for pos, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ModelError(f"{where}: unbalanced parentheses in {text!r}")
        elif ch == "*" and depth == 0:
            parts.append(text[start:pos])
            start = pos + 1
    if depth:
        raise ModelError(f"{where}: unbalanced parentheses in {text!r}")
    parts.append(text[start:])
    if any(not p.strip() for p in parts):
        raise ModelError(f"{where}: empty factor in {text!r}")
    return parts


def factor_tables(amplitudes: list[Amplitude], parameter_names: tuple[str, ...]):
    """Integer tables for vectorised evaluation: kinds (n, F), parameter indices (n, F), constants (n,)."""
    import numpy as np

    index = {name: i for i, name in enumerate(parameter_names)}
    width = max([len(a.factors) for a in amplitudes] + [1])
    kinds = np.zeros((len(amplitudes), width), dtype=np.int64)
    params = np.zeros((len(amplitudes), width), dtype=np.int64)
    for h, amp in enumerate(amplitudes):
        for f, (kind, name) in enumerate(amp.factors):
            if name not in index:
                raise ModelError(f"amplitude {amp} uses undefined parameter {name!r}; defined: {list(parameter_names)}")
            kinds[h, f] = _KIND[kind]
            params[h, f] = index[name]
    constants = np.array([complex(a.constant) for a in amplitudes], dtype=np.complex128)
    return kinds, params, constants
