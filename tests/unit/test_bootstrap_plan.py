"""What `emd bootstrap` says it will do to each shared stack, from its status and the emd:version tag."""

from __future__ import annotations

from emd_cli.aws.shared_stacks import version_key
from emd_cli.bootstrap import _plan_line


def test_versions_compare_as_numbers():
    assert version_key("0.10.0") > version_key("0.9.47")  # type: ignore[operator]
    assert version_key("0+unknown") == (0,) and version_key(None) is None


def test_a_missing_stack_is_created_and_a_failed_one_replaced():
    assert _plan_line(None, None, "0.2.0") == "create"
    assert "ROLLBACK_COMPLETE" in _plan_line("ROLLBACK_COMPLETE", "0.2.0", "0.2.0")


def test_an_older_bootstrap_is_upgraded_and_a_newer_one_is_flagged():
    assert _plan_line("UPDATE_COMPLETE", "0.1.0", "0.2.0") == "upgrade from emd 0.1.0 to 0.2.0"
    newer = _plan_line("UPDATE_COMPLETE", "0.3.0", "0.2.0")
    assert "newer emd (0.3.0)" in newer and "upgrade emd" in newer
    assert _plan_line("CREATE_COMPLETE", "0.2.0", "0.2.0") == "update (CREATE_COMPLETE, emd 0.2.0)"
