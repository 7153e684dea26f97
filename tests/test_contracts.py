"""Every registered method and dataset meets the registry contracts (``tests/contracts.py``): a new entry is
tested without touching the tests."""

from __future__ import annotations

import pytest

from mdistiller_ddkd.dataset import DATASETS
from mdistiller_ddkd.distillers import distiller_dict
from tests import contracts

METHODS = sorted(distiller_dict)


@pytest.mark.parametrize("method", METHODS)
def test_method_trains_one_step_within_the_contract(method):
    contracts.check_method_trains_one_step_within_the_contract(method)


@pytest.mark.parametrize("method", METHODS)
def test_method_evaluates_as_the_student_alone(method):
    contracts.check_method_evaluates_as_the_student_alone(method)


@pytest.mark.parametrize("method", METHODS)
def test_method_counts_exactly_its_own_parameters(method):
    contracts.check_method_counts_exactly_its_own_parameters(method)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_dataset_items_have_the_documented_layout(name, tmp_path):
    contracts.check_dataset_items_have_the_documented_layout(name, tmp_path)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_dataset_loaders_batch_in_the_documented_layout(name, tmp_path):
    contracts.check_dataset_loaders_batch_in_the_documented_layout(name, tmp_path)
