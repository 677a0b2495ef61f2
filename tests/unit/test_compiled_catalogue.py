"""The compiled catalogue behind `emd list-supported-models`: a warm run reads neither YAML nor pydantic (nor
imports rich or other commands' modules), the file is never stale (a changed data file or rule is a miss),
and a cache dir that cannot be written or holds garbage only costs time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model_specs import compat, compiled
from model_specs.catalogue import catalogue
from model_specs.schema import ServiceType

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import sys\n"
    "from emd_cli.main import main\n"
    "rc = main(sys.argv[1:])\n"
    "heavy = ('yaml', 'pydantic', 'model_specs.compat', 'rich', 'emd_cli.targets', 'emd_cli.deploy')\n"
    "print('\\nLOADED', *[m for m in heavy if m in sys.modules], file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def _list(cache: Path, *args: str, cwd: Path = ROOT) -> tuple[dict, str]:
    """Run `emd list-supported-models --json` in a fresh interpreter; (output, modules it loaded)."""
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION", "PYTHONPATH")}
    env["EMD_CACHE_DIR"] = str(cache)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, "list-supported-models", "--json", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr.rpartition("LOADED")[2].strip()


def test_a_warm_run_parses_no_yaml_and_builds_no_pydantic_model(tmp_path: Path) -> None:
    cold, cold_loaded = _list(tmp_path)
    warm, warm_loaded = _list(tmp_path)
    assert warm == cold and len(warm["models"]) == len(catalogue().models)
    assert "pydantic" in cold_loaded  # the first run validates the catalogue and applies the rules
    assert warm_loaded == ""
    assert [p.name for p in tmp_path.iterdir()] == [f"catalogue-{compiled.fingerprint()[:16]}.json"]


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    """A folder holding a copy of model_specs: `python` started there imports the copy."""
    dst = tmp_path / "src"
    shutil.copytree(ROOT / "model_specs", dst / "model_specs", ignore=shutil.ignore_patterns("__pycache__"))
    return dst


@pytest.mark.slow
def test_a_changed_data_file_or_rule_is_never_served_stale(tmp_path: Path, package_copy: Path) -> None:
    cache = tmp_path / "cache"
    before, _ = _list(cache, cwd=package_copy)
    qwen = package_copy / "model_specs/data/models/qwen.yaml"
    qwen.write_text(qwen.read_text().replace("Qwen2.5-7B-Instruct", "Qwen2.5-7B-Renamed", 1))
    renamed, loaded = _list(cache, cwd=package_copy)
    assert "pydantic" in loaded
    assert {r["model_id"] for r in renamed["models"]} == (
        {r["model_id"] for r in before["models"]} - {"Qwen2.5-7B-Instruct"} | {"Qwen2.5-7B-Renamed"}
    )
    # a rule change (here: every model needs 10 TiB more) changes the answers, with the same data
    rules = package_copy / "model_specs/compat.py"
    rules.write_text(
        rules.read_text().replace("RUNTIME_OVERHEAD_GIB_PER_GPU = 1.5", "RUNTIME_OVERHEAD_GIB_PER_GPU = 1e4")
    )
    stricter, _ = _list(cache, cwd=package_copy)
    assert {r["smallest_instance"] for r in stricter["models"]} == {None}


@pytest.mark.slow
def test_two_installations_used_in_turn_keep_their_own_file(tmp_path: Path, package_copy: Path) -> None:
    qwen = package_copy / "model_specs/data/models/qwen.yaml"
    qwen.write_text(qwen.read_text() + "\n# another installation\n")
    cache = tmp_path / "cache"
    for cwd in (ROOT, package_copy):
        _list(cache, "--type", "asr", cwd=cwd)
    for cwd in (ROOT, package_copy):
        assert _list(cache, "--type", "asr", cwd=cwd)[1] == ""  # both warm
    assert len(list(cache.glob("catalogue-*.json"))) == 2


def test_old_fingerprints_are_pruned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMD_CACHE_DIR", str(tmp_path))
    for n in range(compiled.KEEP_FILES + 3):
        old = tmp_path / f"catalogue-old{n:02d}.json"
        old.write_text("{}")
        os.utime(old, (n, n))
    compiled.CompiledCatalogue("f" * 64, [], [], {}, compiled.cache_path("f" * 64)).save()
    left = sorted(p.name for p in tmp_path.glob("catalogue-*.json"))
    assert len(left) == compiled.KEEP_FILES and "catalogue-ffffffffffffffff.json" in left
    assert "catalogue-old00.json" not in left and f"catalogue-old{compiled.KEEP_FILES + 2:02d}.json" in left


@pytest.mark.parametrize("garbage", ["", "{not json", '{"format": 1, "fingerprint": 3}', "[]", '"x"'])
def test_a_corrupt_cache_file_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, garbage: str
) -> None:
    monkeypatch.setenv("EMD_CACHE_DIR", str(tmp_path))
    path = compiled.cache_path(compiled.fingerprint())
    path.write_text(garbage)
    data, loaded = _list(tmp_path, "--type", "rerank")
    assert data["models"] and "pydantic" in loaded
    assert json.loads(path.read_text())["fingerprint"] == compiled.fingerprint()


def test_an_unwritable_cache_dir_only_costs_time(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    data, _ = _list(blocker / "emd")  # a directory cannot be made under a file (even as root)
    assert len(data["models"]) == len(catalogue().models)
    assert list(tmp_path.iterdir()) == [blocker]


def test_the_fingerprint_covers_every_data_file_and_module(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "model_specs", tmp_path / "m", ignore=shutil.ignore_patterns("__pycache__"))
    root = tmp_path / "m"
    seen = {compiled.fingerprint(root)}
    assert compiled.fingerprint(root) in seen  # deterministic
    (root / "__pycache__").mkdir()
    (root / "__pycache__/x.py").write_text("# bytecode folders are not inputs")
    assert compiled.fingerprint(root) in seen
    for rel in ("data/prices.yaml", "data/models/local.yaml", "compat.py", "schema.py"):
        (root / rel).write_text((root / rel).read_text() + "\n")
        seen.add(compiled.fingerprint(root))
    (root / "data/models/new.yaml").write_text("[]\n")
    seen.add(compiled.fingerprint(root))
    assert len(seen) == 6


def test_smallest_instance_per_engine_is_the_rules_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMD_CACHE_DIR", str(tmp_path))
    compiled.compiled.cache_clear()
    try:
        comp = compiled.compiled()
        cat = catalogue()
        pairs = [(m.id, e) for m in cat.models.values() for e in m.engines]
        for region in ("us-east-1", "cn-northwest-1", "eu-north-1"):
            answers = comp.smallest_instances(region, pairs)
            for (model_id, engine), name in answers.items():
                model, eng = cat.models[model_id], cat.engines[engine]
                fits = [
                    compat.fitting_instances(cat, model, eng, svc, region)
                    for svc in (ServiceType.sagemaker_realtime, ServiceType.ec2)
                ]
                expected = next((f[0].name for f in fits if f), None)
                assert name == expected, (region, model_id, engine)
        stored = json.loads(compiled.cache_path(comp.fingerprint).read_text())["smallest"]
        assert set(stored) == {"us-east-1", "cn-northwest-1", "eu-north-1"}
    finally:
        compiled.compiled.cache_clear()
