"""The local target's view of this machine: nvidia-smi facts, the machine as an instance judged by
model_specs.compat's rules, refusals that list what fits, and where local weights come from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emd_cli.targets.local_weights import local_model_path
from model_specs.catalogue import catalogue
from model_specs.deployment import resolve_deployment, resolve_local_deployment
from model_specs.errors import EmdUserError
from model_specs.machine import Gpu, MachineFacts, local_choices, parse_nvidia_smi
from model_specs.schema import Accelerator

SMALL_CPU = MachineFacts(cpus=4, memory_gib=8, engines=frozenset({"llama.cpp"}))
A10G = Gpu("NVIDIA A10G", 22.5, 8.6)
GPU_BOX = MachineFacts(cpus=8, memory_gib=32, gpus=(A10G,), engines=frozenset({"llama.cpp", "vllm"}))


def test_parse_nvidia_smi() -> None:
    out = "NVIDIA A10G, 23028, 8.6\nTesla T4, 15360, 7.5\n\nbroken line\n"
    assert parse_nvidia_smi(out) == (Gpu("NVIDIA A10G", 23028 / 1024, 8.6), Gpu("Tesla T4", 15.0, 7.5))
    assert parse_nvidia_smi("NVIDIA A10G, 23028\n") == (Gpu("NVIDIA A10G", 23028 / 1024, None),)


def test_machine_as_instance() -> None:
    cpu = SMALL_CPU.as_instance()
    assert (cpu.accelerator, cpu.gpus, cpu.memory_gib, cpu.name) == (Accelerator.cpu, 0, 8, "this machine")
    gpu = MachineFacts(cpus=8, memory_gib=32, gpus=(A10G, Gpu("Tesla T4", 15.0, 7.5))).as_instance()
    assert (gpu.accelerator, gpu.gpus, gpu.gpu_memory_gib, gpu.bf16) == (Accelerator.gpu, 2, 15.0, False)
    assert (gpu.compute_capability, gpu.gpu_arch) == (7.5, "Turing")
    unknown = MachineFacts(cpus=8, memory_gib=32, gpus=(Gpu("Old", 16.0),)).as_instance()
    assert (unknown.compute_capability, unknown.bf16) == (7.0, False)
    assert GPU_BOX.as_instance().gpu_arch == "Ampere"


def test_smollm_fits_a_small_cpu_machine() -> None:
    dep = resolve_local_deployment(model_id="SmolLM2-135M-Instruct-GGUF", facts=SMALL_CPU, region="us-east-1")
    assert (dep.engine_type, dep.service_type.value, dep.instance.name) == (
        "llama.cpp",
        "local",
        "this machine",
    )
    assert [m.id for m, _ in local_choices(catalogue(), SMALL_CPU)] == ["SmolLM2-135M-Instruct-GGUF"]


def test_a_gpu_machine_with_vllm_installed_runs_a_7b_model() -> None:
    dep = resolve_local_deployment(model_id="Qwen2.5-7B-Instruct", facts=GPU_BOX, region="us-east-1")
    assert dep.engine_type == "vllm" and dep.tensor_parallel_degree == 1
    assert "Qwen2.5-7B-Instruct" in [m.id for m, _ in local_choices(catalogue(), GPU_BOX)]


def test_refusal_names_the_reasons_and_what_fits() -> None:
    with pytest.raises(EmdUserError) as err:
        resolve_local_deployment(model_id="Qwen2.5-7B-Instruct", facts=SMALL_CPU, region="us-east-1")
    msg = str(err.value)
    assert "cannot run on this machine (4 CPUs, 8.0 GiB RAM, no GPU)" in msg
    assert "engine vllm does not support cpu instances like this machine" in msg
    assert msg.endswith("Models that fit here: SmolLM2-135M-Instruct-GGUF (-e llama.cpp).")


def test_an_engine_that_is_not_installed_is_refused() -> None:
    no_vllm = MachineFacts(cpus=8, memory_gib=32, gpus=(A10G,), engines=frozenset({"llama.cpp"}))
    with pytest.raises(EmdUserError, match="engine vllm is not installed on this machine"):
        resolve_local_deployment(
            model_id="Qwen2.5-7B-Instruct", engine_type="vllm", facts=no_vllm, region="us-east-1"
        )


def test_too_little_memory_is_refused_with_the_numbers() -> None:
    tiny = MachineFacts(cpus=1, memory_gib=1, engines=frozenset({"llama.cpp"}))
    with pytest.raises(
        EmdUserError, match=r"needs ~1\.\d GiB of memory .* this machine offers 0\.8 GiB usable"
    ):
        resolve_local_deployment(model_id="SmolLM2-135M-Instruct-GGUF", facts=tiny, region="us-east-1")


def test_weights_paths_belong_to_their_targets() -> None:
    with pytest.raises(EmdUserError, match="model_files_local_path is for -s local"):
        resolve_deployment(
            model_id="Qwen2.5-7B-Instruct", instance_type="g5.2xlarge", service_type="ec2",
            region="us-east-1", extra_params={"model_params": {"model_files_local_path": "/models/q"}},
        )  # fmt: skip
    with pytest.raises(EmdUserError, match="model_files_s3_path is for AWS targets"):
        resolve_local_deployment(
            model_id="SmolLM2-135M-Instruct-GGUF", facts=SMALL_CPU, region="us-east-1",
            extra_params={"model_params": {"model_files_s3_path": "s3://bucket/q"}},
        )  # fmt: skip
    with pytest.raises(EmdUserError, match="Did you mean 'model_files_local_path'"):
        resolve_local_deployment(
            model_id="SmolLM2-135M-Instruct-GGUF", facts=SMALL_CPU, region="us-east-1",
            extra_params={"model_params": {"model_file_local_path": "/x"}},
        )  # fmt: skip


def _local(
    path: str | None = None, model_id: str = "SmolLM2-135M-Instruct-GGUF", facts: MachineFacts = SMALL_CPU
):
    params = {"model_params": {"model_files_local_path": path}} if path else None
    return resolve_local_deployment(model_id=model_id, facts=facts, region="us-east-1", extra_params=params)


def test_local_weights_come_from_the_package_or_the_given_path(tmp_path: Path) -> None:
    packaged = local_model_path(_local())
    assert packaged.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and packaged.is_file()
    (tmp_path / "sub").mkdir()
    gguf = tmp_path / "sub" / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert local_model_path(_local(str(gguf))) == gguf
    assert local_model_path(_local(str(tmp_path))) == tmp_path
    with pytest.raises(EmdUserError, match="does not exist"):
        local_model_path(_local(str(tmp_path / "nope")))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EmdUserError, match=r"no \.gguf file under"):
        local_model_path(_local(str(empty)))


def test_a_missing_local_path_is_refused_before_the_plan_is_shown(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from emd_cli.main import cli

    params = json.dumps({"model_params": {"model_files_local_path": str(tmp_path / "nope")}})
    res = CliRunner().invoke(
        cli, ["plan", "--model-id", "SmolLM2-135M-Instruct-GGUF", "-s", "local", "--extra-params", params]
    )
    assert res.exit_code == 2, res.output
    missing = repr(str(tmp_path / "nope"))
    expected = f"Error: model_params.model_files_local_path {missing} does not exist"
    assert res.output.strip().splitlines() == [expected]


def test_hub_weights_are_refused_offline_with_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EmdUserError, match=r"HF_HUB_OFFLINE is set.*model_files_local_path"):
        local_model_path(_local(model_id="Qwen2.5-7B-Instruct", facts=GPU_BOX))
