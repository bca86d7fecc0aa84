"""Every dependency is pinned to the versions the suite is tested with.

An open `redis>=5` once installed redis-py 8 on a fresh machine, whose 5-second read
timeout closed every idle agent socket: a new major release is taken on purpose."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
REQUIREMENTS = [
    Requirement(line) for line in PROJECT["dependencies"] + PROJECT["optional-dependencies"]["dev"]
]


@pytest.mark.parametrize("requirement", REQUIREMENTS, ids=lambda r: r.name)
def test_each_dependency_has_an_upper_bound(requirement: Requirement):
    operators = {spec.operator for spec in requirement.specifier}
    assert operators & {"<", "<=", "==", "~="}, f"{requirement} has no upper bound"
    assert operators & {">", ">=", "==", "~="}, f"{requirement} has no lower bound"


@pytest.mark.parametrize("requirement", REQUIREMENTS, ids=lambda r: r.name)
def test_the_installed_version_is_within_the_range(requirement: Requirement):
    installed = version(requirement.name)
    assert requirement.specifier.contains(installed, prereleases=True), (
        f"{requirement.name} {installed} is installed; pyproject.toml says {requirement}"
    )


def test_the_libraries_patched_or_configured_for_a_version_are_pinned_tightly():
    by_name = {r.name.lower(): r for r in REQUIREMENTS}
    # helpdesk/celery.py overrides consumer internals; settings set the channel layer's
    # socket timeout for redis-py 8's defaults.
    assert str(by_name["celery"].specifier) == "<5.8,>=5.7"
    assert str(by_name["kombu"].specifier) == "<5.8,>=5.7"
    assert str(by_name["redis"].specifier) == "<9,>=8.1"
