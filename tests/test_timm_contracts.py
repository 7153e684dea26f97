"""Every registered method on tiny random timm pairs (``timm/...``) meets the contracts the zoo meets
(``tests/contracts.py``), or refuses the pair in one line saying why."""

from __future__ import annotations

import pytest

from mdistiller_ddkd.distillers import distiller_dict
from tests import contracts
from tests.helpers import require_extra

METHODS = sorted(distiller_dict)
#: (name, teacher, student): CNN pairs for every method; ViTs (32x32 via img_size) for the logit methods
#: (OFD and REVIEWKD refuse timm teachers: no pre-ReLU maps)
CNN_PAIRS = [("timm_resnet_mnv3", "timm/test_resnet", "timm/mobilenetv3_small_050"),
             ("timm_convnext_resnet", "timm/test_convnext", "timm/test_resnet")]
VIT_PAIR = ("timm_vit_vit", "timm/test_vit", "timm/test_vit")
LOGIT_METHODS = ["DKD", "KD", "NONE"]


@pytest.fixture(autouse=True)
def _timm():
    require_extra("timm", "timm")


def _refused(method, pair) -> bool:
    """Whether ``method`` refuses ``pair``; a refusal must be one line naming the method."""
    built = contracts.try_build(method, pair)
    if isinstance(built, str):
        assert "\n" not in built and method in built, f"{method} refuses {pair[1:]} not in one line: {built!r}"
    return isinstance(built, str)


@pytest.mark.parametrize("method", METHODS)
def test_method_on_a_timm_resnet_to_mobilenetv3_pair_meets_every_contract_or_refuses(method):
    pair = CNN_PAIRS[0]
    if not _refused(method, pair):
        contracts.check_method_trains_one_step_within_the_contract(method, [pair])
        contracts.check_method_evaluates_as_the_student_alone(method, [pair])
        contracts.check_method_counts_exactly_its_own_parameters(method, [pair])


@pytest.mark.parametrize("method", METHODS)
def test_method_on_a_timm_convnext_to_resnet_pair_trains_within_the_contract_or_refuses(method):
    if not _refused(method, CNN_PAIRS[1]):
        contracts.check_method_trains_one_step_within_the_contract(method, [CNN_PAIRS[1]])


@pytest.mark.parametrize("method", LOGIT_METHODS)
def test_logit_method_on_a_timm_vit_pair_trains_and_evaluates_within_the_contract(method):
    assert not _refused(method, VIT_PAIR)
    contracts.check_method_trains_one_step_within_the_contract(method, [VIT_PAIR])
    contracts.check_method_evaluates_as_the_student_alone(method, [VIT_PAIR])
