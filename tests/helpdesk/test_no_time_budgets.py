"""The suite asserts that things happen, never how fast (developers' guide, issue 9 §7).

Two browser tests once failed on a busy machine because they asserted 2-second budgets.
This scans every test module for the two shapes a budget takes: a Playwright wait with a
short timeout, and an assertion on a measured duration. Speed is `make bench`'s job."""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
# Below this, a Playwright wait is a budget rather than room for a slow machine.
SHORTEST_WAIT_MS = 10_000
PLAYWRIGHT_WAITS = re.compile(r"^(to_|not_to_|wait_for_(selector|function|url|event))")
CLOCKS = {"monotonic", "perf_counter", "time", "monotonic_ns", "perf_counter_ns"}
DURATION = re.compile(r"(elapsed|duration|latency|_seconds|_secs|_s|_ms)$")


def _int_constants(tree: ast.Module) -> dict[str, int]:
    """Module-level NAME = <int> assignments (e.g. SETTLE = 10_000)."""
    found = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and type(node.value.value) is int
        ):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value.value
    return found


def _short_waits(tree: ast.Module, constants: dict[str, int]) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if not PLAYWRIGHT_WAITS.match(node.func.attr):
            continue
        for keyword in node.keywords:
            if keyword.arg != "timeout":
                continue
            value = keyword.value
            if isinstance(value, ast.Constant) and type(value.value) is int:
                ms = value.value
            elif isinstance(value, ast.Name) and value.id in constants:
                ms = constants[value.id]
            else:
                continue
            if ms < SHORTEST_WAIT_MS:
                found.append((node.lineno, f"{node.func.attr}(timeout={ms})"))
    return found


def _names_in(node: ast.AST) -> set[str]:
    names = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            names.add(child.id)
        elif isinstance(child, ast.Attribute):
            names.add(child.attr)
        elif isinstance(child, ast.Constant) and isinstance(child.value, str):
            names.add(child.value)
    return names


def _timed_assertions(tree: ast.Module) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assert) or not isinstance(node.test, ast.Compare):
            continue
        if not all(isinstance(op, ast.Lt | ast.LtE) for op in node.test.ops):
            continue
        names = _names_in(node.test)
        clock_calls = {
            child.func.attr
            for child in ast.walk(node.test)
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute)
        } & CLOCKS
        if clock_calls or any(DURATION.search(name) for name in names):
            found.append((node.lineno, ast.unparse(node.test)))
    return found


def _budgets() -> list[str]:
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        constants = _int_constants(tree)
        for line, what in _short_waits(tree, constants) + _timed_assertions(tree):
            found.append(f"{path.relative_to(TESTS.parent)}:{line}: {what}")
    return found


def test_no_test_asserts_a_wall_clock_budget():
    assert _budgets() == []


def test_the_scan_finds_both_shapes_of_budget():
    source = (
        "LIVE = 2000\n"
        "def test():\n"
        "    expect(row).to_be_visible(timeout=LIVE)\n"
        "    expect(row).to_have_text('x', timeout=5000)\n"
        "    expect(row).to_be_visible(timeout=SETTLE)\n"
        "    assert found['ticket_visible_after_tap_s'] < LIVE / 1000\n"
        "    assert time.monotonic() - started <= 2\n"
        "    assert len(rows) < 3\n"
    )
    tree = ast.parse(source)
    waits = _short_waits(tree, _int_constants(tree))
    assert waits == [(3, "to_be_visible(timeout=2000)"), (4, "to_have_text(timeout=5000)")]
    assert [line for line, _ in _timed_assertions(tree)] == [6, 7]
