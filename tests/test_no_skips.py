"""The suite skips nothing: a skip, however it is written, is a failure with its reason."""

from __future__ import annotations

import pytest


def test_every_kind_of_skip_fails_with_its_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_skips="""
        import pytest

        def test_runs():
            assert True

        def test_skips_inside():
            pytest.skip("no widget here")

        @pytest.mark.skipif(True, reason="not on this machine")
        def test_skipif():
            pass

        def test_importorskip():
            pytest.importorskip("no_such_module_anywhere")

        @pytest.mark.xfail(reason="a known bug", strict=True)
        def test_xfail():
            assert False
        """
    )
    result = pytester.runpytest("-p", "tests._no_skips", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2, errors=1, xfailed=1)  # skipif: at setup
    result.stdout.fnmatch_lines(["*skipped (no widget here), and the suite skips nothing*"])
    result.stdout.fnmatch_lines(["*skipped (not on this machine)*"])
    result.stdout.fnmatch_lines(["*skipped (could not import *no_such_module_anywhere*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
