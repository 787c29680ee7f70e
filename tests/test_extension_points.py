"""The registrations docs/developing.md names stay complete: every registered family is a module with ``compute``
and has its features in the IBSI table; every built-in filter module declares the filter registered under it."""
from __future__ import annotations

import importlib

import pytest

from radflow import ibsi
from radflow.features import engine, registry
from radflow.imaging.filters import registry as filter_registry


@pytest.mark.parametrize("family", ibsi.FAMILIES)
def test_every_registered_family_is_a_module_with_features_in_the_table(family):
    module = engine.family_module(family)
    assert module.__name__ == f"radflow.features.{family}" and callable(module.compute)
    codes = registry.codes_of(family)
    assert codes, f"no rows of {family} in data/ibsi_features.csv"
    assert {registry.info(code).family_code for code in codes} == {ibsi.FAMILY_CODES[family]}


def test_the_table_names_no_unregistered_family():
    assert {info.family for info in registry.features().values()} == set(ibsi.FAMILIES)


@pytest.mark.parametrize("module_name", filter_registry.BUILT_IN_FILTERS)
def test_every_built_in_filter_module_declares_its_filter(module_name):
    kind = importlib.import_module(module_name).FILTER
    assert filter_registry.registered()[kind.name] is kind
