"""`affordml destroy --releases`: asks first, and without a cluster says which phase writes the kubeconfig."""

from __future__ import annotations

from .test_cli import assert_one_line_error


def test_destroy_releases_asks_for_confirmation_first(cli):
    result = cli("destroy", "--releases")
    assert result.rc == 8
    assert_one_line_error(result, "Helm releases", "--yes-i-really-really-mean-it")


def test_destroy_releases_without_a_cluster_names_the_phase_to_run(cli):
    result = cli("destroy", "--releases", "--yes-i-really-really-mean-it")
    assert result.rc != 0
    assert_one_line_error(result, "no cluster kubeconfig", "affordml init phase kubernetes")
