"""The xdist scheduler's units (tests/conftest.py): a module whose tests share a fixture is one unit."""

from __future__ import annotations

from conftest import shares_fixtures


def test_modules_sharing_a_fixture_are_told_apart_from_modules_of_independent_tests() -> None:
    assert shares_fixtures("tests/test_mask_package.py")  # a trained Mask R-CNN, module-scoped
    assert shares_fixtures("tests/test_tune.py")  # the sweep, session-scoped
    assert shares_fixtures("tests/test_bad_input_policies.py")  # imports test_bad_input's fixtures
    assert not shares_fixtures("tests/test_tasks.py")  # each learning run its own: spread over workers
    assert not shares_fixtures("tests/test_real_use.py")
