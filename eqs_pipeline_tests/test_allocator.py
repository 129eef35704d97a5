"""The package's allocator default for Polars (eqs_pipeline/__init__.py) reaches Polars'
jemalloc wherever the product runs. Each check starts a fresh interpreter: the setting only
counts if it is in the environment before Polars is first imported."""

import os
import subprocess
import sys

import pytest

from eqs_pipeline import POLARS_ALLOCATOR_CONF, POLARS_ALLOCATOR_ENV

pytestmark = pytest.mark.integration


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != POLARS_ALLOCATOR_ENV}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_code_location_sets_the_default_before_polars_is_imported():
    # What `dagster dev`, `dg` and the executor's fork server import before the definitions.
    out = _python(
        "import sys, dagster, dagster_duckdb, pandera\n"
        "assert 'polars' not in sys.modules, 'polars imported before eqs_pipeline'\n"
        "import eqs_pipeline.definitions, os\n"
        f"print(os.environ[{POLARS_ALLOCATOR_ENV!r}])\n"
        "import polars as pl\n"
        "pl.DataFrame({'a': [1, 2]}).sum()\n"
        f"print(os.environ[{POLARS_ALLOCATOR_ENV!r}])"
    )
    assert out.returncode == 0, out.stderr
    before, after = out.stdout.split()
    assert before == POLARS_ALLOCATOR_CONF
    # Polars puts its own defaults first and the caller's setting after them (the last wins).
    assert after.endswith("," + POLARS_ALLOCATOR_CONF) and after != POLARS_ALLOCATOR_CONF
    assert "<jemalloc>" not in out.stderr  # a valid setting: jemalloc complains of none


def test_jemalloc_reads_a_setting_made_in_process_before_polars():
    # An option jemalloc does not know is reported by jemalloc itself when Polars starts: proof
    # that a value put in os.environ by the package (not by the shell) is the one it reads.
    out = _python(
        "import os, eqs_pipeline\n"
        f"os.environ[{POLARS_ALLOCATOR_ENV!r}] += ',not_an_option:1'\n"
        "import polars as pl\n"
        "pl.DataFrame({'a': [1, 2]}).sum()"
    )
    assert out.returncode == 0, out.stderr
    assert "Invalid conf pair: not_an_option:1" in out.stderr


def test_an_explicit_setting_is_kept():
    out = _python(
        f"import os, eqs_pipeline; print(os.environ[{POLARS_ALLOCATOR_ENV!r}])",
        **{POLARS_ALLOCATOR_ENV: "muzzy_decay_ms:0"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "muzzy_decay_ms:0"
