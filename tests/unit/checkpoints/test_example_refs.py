"""Every example ref users can copy — the trigger form's help, the CLI help, the README, the shipped watch-list —
parses, and the offline ones materialize: what the form says is valid must be valid."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from evals.checkpoints.materialize import materialize
from evals.checkpoints.models import SMOLLM2_MODEL_ID
from evals.checkpoints.ref import CheckpointRef
from evals.checkpoints.watchlist import load_watchlist
from evals.settings import Settings

REPO = Path(__file__).resolve().parents[3]
REF_PATTERN = re.compile(r"\b(?:hf|package|s3|local):(?!//)[A-Za-z0-9_./<>@~-]*[A-Za-z0-9>]")
PLACEHOLDER_SHA = re.compile(r"<40-hex sha>|<sha>")


def _string_constants(path: Path) -> list[str]:
    return [node.value for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Constant)
            and isinstance(node.value, str)]  # fmt: skip


def _example_refs() -> dict[str, list[str]]:
    texts = {
        "trigger form (dags/evals_manual.py)": " ".join(_string_constants(REPO / "dags" / "evals_manual.py")),
        "evals run --help (evals/cli/pipeline.py)": " ".join(_string_constants(REPO / "evals" / "cli" / "pipeline.py")),
        "README.md": (REPO / "README.md").read_text(),
    }
    found = {
        where: sorted(set(REF_PATTERN.findall(PLACEHOLDER_SHA.sub("0" * 40, text)))) for where, text in texts.items()
    }
    return {where: refs for where, refs in found.items() if refs}


EXAMPLES = [(where, ref) for where, refs in _example_refs().items() for ref in refs]


def test_the_form_and_the_cli_name_example_refs() -> None:
    wheres = {where for where, _ in EXAMPLES}
    assert any("trigger form" in w for w in wheres) and any("evals run" in w for w in wheres), EXAMPLES
    assert ("trigger form (dags/evals_manual.py)", "package:smollm2") in EXAMPLES


@pytest.mark.parametrize(("where", "text"), EXAMPLES)
def test_every_example_ref_parses(where: str, text: str) -> None:
    ref = CheckpointRef.parse(text)
    assert ref.source in {"hf", "package", "s3", "local"}, where


@pytest.mark.slow
@pytest.mark.parametrize("text", sorted({ref for _, ref in EXAMPLES if ref.startswith("package:")}))
def test_every_packaged_example_materializes(text: str, settings: Settings, smollm2_dir: Path) -> None:
    shared = settings.model_copy(update={"cache_dir": smollm2_dir.parents[2]})  # the converted model, not rebuilt
    path = materialize(text, settings=shared)
    assert (path / "model.safetensors").is_file() and (path / "config.json").is_file()


@pytest.mark.slow
def test_the_shipped_watchlist_discovers_and_materializes(settings: Settings, smollm2_dir: Path) -> None:
    from evals.checkpoints.discover import discover

    shared = settings.model_copy(update={"cache_dir": smollm2_dir.parents[2]})
    watchlist = load_watchlist(REPO / "evals" / "config" / "watchlist.yaml")
    found = discover(watchlist, settings=shared)
    assert not found.errors, found.errors
    assert [ref.model_id for ref in found.new] == [SMOLLM2_MODEL_ID]
    assert materialize(found.new[0], settings=shared) == smollm2_dir


def test_the_short_and_the_full_package_ref_resolve_to_the_same_checkpoint(settings: Settings) -> None:
    from evals.checkpoints.sources.package import PackageSource

    source = PackageSource(settings)
    short = source.resolve(CheckpointRef.parse("package:smollm2"))
    full = source.resolve(CheckpointRef.parse(f"package:{SMOLLM2_MODEL_ID}"))
    assert short == full and short.model_id == SMOLLM2_MODEL_ID and short.pinned
