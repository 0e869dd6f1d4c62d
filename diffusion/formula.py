"""Strict parsing of chemical formulas typed by people (CLI, app)."""
from __future__ import annotations

import re
from collections import Counter

from pymatgen.core.periodic_table import Element

MAX_FORMULA_LENGTH = 200
_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*)|(\()|(\))(\d*)")


class FormulaError(ValueError):
    """A formula that cannot be turned into a list of atoms; the message says why."""


def _element_number(symbol: str) -> int:
    if not Element.is_valid_symbol(symbol):
        raise FormulaError(f"unknown element '{symbol}'")
    return Element(symbol).Z


def parse_formula(formula: str, max_atoms: int = 100) -> list[int]:
    """Atomic numbers of a cell with this exact formula, e.g. "Ti2O4" -> [22, 22, 8, 8, 8, 8].

    Accepts element symbols with integer counts and parentheses ("Ca(OH)2"); counts are
    the atoms in the cell, so "TiO2" is 3 atoms and "Ti2O4" is 6.

    Raises:
        FormulaError: empty, too long, unknown element, fractional count, zero atoms
            or more than ``max_atoms`` atoms.
    """
    if formula is None or not str(formula).strip():
        raise FormulaError("the formula is empty")
    text = str(formula).strip().replace(" ", "")
    if len(text) > MAX_FORMULA_LENGTH:
        raise FormulaError(f"the formula is longer than {MAX_FORMULA_LENGTH} characters")
    if re.search(r"\d\.\d|\.\d", text):
        raise FormulaError("fractional amounts (e.g. Fe0.5) describe disorder; give whole atom counts")
    stack: list[Counter] = [Counter()]
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise FormulaError(f"cannot read the formula at '{text[pos:pos + 10]}' (use element symbols like NaCl, Ti2O4)")
        symbol, count, open_paren, close_paren, group_count = match.groups()
        if symbol:
            amount = int(count) if count else 1
            stack[-1][_element_number(symbol)] += amount
        elif open_paren:
            stack.append(Counter())
        else:
            if len(stack) == 1:
                raise FormulaError("unbalanced ')' in the formula")
            group = stack.pop()
            factor = int(group_count) if group_count else 1
            for z, amount in group.items():
                stack[-1][z] += amount * factor
        pos = match.end()
        total = sum(sum(c.values()) for c in stack)
        if total > max_atoms:
            raise FormulaError(f"the formula has more than {max_atoms} atoms")
    if len(stack) != 1:
        raise FormulaError("unbalanced '(' in the formula")
    counts = stack[0]
    # zero counts ("Na0Cl") would silently drop an element
    if any(v == 0 for v in counts.values()) or sum(counts.values()) == 0:
        raise FormulaError("every element needs at least one atom")
    numbers: list[int] = []
    for z, amount in counts.items():
        numbers.extend([z] * amount)
    return numbers
