"""The suite itself never writes under the repo's data/ (tests/conftest.py)."""

from __future__ import annotations

from lb_pipelines import settings

WRITABLE = (settings.warehouse_path, settings.bi_dir, settings.outbox_dir, settings.dagster_home)


def test_without_lb_env_every_writable_path_is_outside_the_repo_data():
    for where in WRITABLE:
        assert not where().is_relative_to(settings.DATA_DIR), where.__name__


def test_lb_env_puts_every_writable_path_under_the_test_folder(lb_env):
    for where in WRITABLE:
        assert where().is_relative_to(lb_env.resolve()), where.__name__
