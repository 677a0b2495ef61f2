"""Facts about this machine for the local target (`-s local`): CPUs, RAM, NVIDIA GPUs (through `nvidia-smi`)
and the engines installed here, turned into an InstanceSpec so that model_specs.compat's rules judge it like
any catalogued instance."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from model_specs.catalogue import Catalogue
from model_specs.schema import Accelerator, EngineSpec, InstanceSpec, ModelSpec, ServiceType

# How compat's sentences name the machine ("… this machine offers 17.5 GiB usable").
MACHINE_NAME = "this machine"

# The programs the engine adapter starts for each engine (serving/engine/command.py; the engine image ships
# serving/ alone, so it cannot share this table with model_specs).
ENGINE_PROGRAMS: dict[str, str] = {
    "vllm": "vllm",
    "tgi": "text-generation-launcher",
    "lmdeploy": "lmdeploy",
    "llama.cpp": "llama-server",
    "ollama": "ollama",
    "huggingface": "text-embeddings-router",
}
# Without `llama-server`, the adapter runs llama-cpp-python's server (pip install 'emd[local]').
PYTHON_ENGINE_MODULES: dict[str, tuple[str, ...]] = {"llama.cpp": ("llama_cpp", "uvicorn", "sse_starlette")}
NVIDIA_SMI_TIMEOUT = 10.0
BF16_COMPUTE_CAPABILITY = 8.0  # Ampere and newer compute in bfloat16
UNKNOWN_COMPUTE_CAPABILITY = 7.0  # drivers too old to report it: assume the least (no bf16, no FP8)
ARCHITECTURES = ((10.0, "Blackwell"), (9.0, "Hopper"), (8.9, "Ada"), (8.0, "Ampere"), (7.5, "Turing"))


def gpu_arch(compute_capability: float) -> str:
    for floor, name in ARCHITECTURES:
        if compute_capability >= floor:
            return name
    return "Volta or older"


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_gib: float
    compute_capability: float | None = None


@dataclass(frozen=True)
class MachineFacts:
    cpus: int
    memory_gib: float
    gpus: tuple[Gpu, ...] = ()
    engines: frozenset[str] = field(default_factory=frozenset)  # engines installed here

    def describe(self) -> str:
        """'8 CPUs, 23.4 GiB RAM, no GPU' or '… 1 x NVIDIA A10G (22.5 GiB)'."""
        if self.gpus:
            gpu = f"{len(self.gpus)} x {self.gpus[0].name} ({self.gpus[0].memory_gib:.1f} GiB)"
        else:
            gpu = "no GPU"
        return f"{self.cpus} CPUs, {self.memory_gib:.1f} GiB RAM, {gpu}"

    def as_instance(self) -> InstanceSpec:
        """This machine as an instance: GPUs when there are some (the smallest one's memory and the oldest
        one's compute capability count; unknown capability counts as pre-Turing)."""
        cc = min((g.compute_capability or UNKNOWN_COMPUTE_CAPABILITY for g in self.gpus), default=None)
        spec = InstanceSpec(
            name="local.machine",
            vcpus=max(self.cpus, 1),
            memory_gib=max(self.memory_gib, 0.01),
            accelerator=Accelerator.gpu if self.gpus else Accelerator.cpu,
            gpus=len(self.gpus),
            gpu_model=self.gpus[0].name if self.gpus else None,
            gpu_memory_gib=min((g.memory_gib for g in self.gpus), default=0.0),
            bf16=cc is None or cc >= BF16_COMPUTE_CAPABILITY,
            gpu_arch=None if cc is None else gpu_arch(cc),
            compute_capability=cc,
            regions=["local"],
        )
        # the schema's name pattern is for EC2 names; compat's refusals read better naming the machine
        return spec.model_copy(update={"name": MACHINE_NAME})


def engine_search_path() -> str:
    """PATH plus the directory of this Python (a venv's bin is not on PATH unless activated): where the
    local target and this module look for engine programs."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)])


def engine_installed(engine: str) -> bool:
    program = ENGINE_PROGRAMS.get(engine)
    if program and shutil.which(program, path=engine_search_path()):
        return True
    modules = PYTHON_ENGINE_MODULES.get(engine)
    return bool(modules) and all(importlib.util.find_spec(m) is not None for m in modules)


def install_hint(engine: str) -> str:
    if engine in PYTHON_ENGINE_MODULES:
        return f"install it with pip install 'emd[local]' (or put `{ENGINE_PROGRAMS[engine]}` on PATH)"
    return f"install it so that `{ENGINE_PROGRAMS.get(engine, engine)}` is on PATH"


def parse_nvidia_smi(text: str) -> tuple[Gpu, ...]:
    """Lines of `nvidia-smi --query-gpu=name,memory.total[,compute_cap] --format=csv,noheader,nounits`
    (memory in MiB)."""
    gpus = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2:
            continue
        try:
            memory_gib = float(parts[1]) / 1024
        except ValueError:
            continue
        try:
            cc: float | None = float(parts[2]) if len(parts) > 2 else None
        except ValueError:
            cc = None
        gpus.append(Gpu(name=parts[0], memory_gib=memory_gib, compute_capability=cc))
    return tuple(gpus)


def detect_gpus() -> tuple[Gpu, ...]:
    """NVIDIA GPUs as `nvidia-smi` reports them; none without the program or a working driver."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    for fields in ("name,memory.total,compute_cap", "name,memory.total"):  # old drivers lack compute_cap
        try:
            out = subprocess.run(
                [smi, f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=NVIDIA_SMI_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return ()
        if out.returncode == 0:
            return parse_nvidia_smi(out.stdout)
    return ()


def total_memory_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def detect(cat: Catalogue) -> MachineFacts:
    return MachineFacts(
        cpus=cpu_count(),
        memory_gib=total_memory_gib(),
        gpus=detect_gpus(),
        engines=frozenset(e for e in cat.engines if engine_installed(e)),
    )


def engine_problem(engine: EngineSpec, facts: MachineFacts) -> str | None:
    """Why the engine cannot run here (not installed), or None. Accelerator support is compat's rule."""
    if engine.name in facts.engines:
        return None
    return f"engine {engine.name} is not installed on {MACHINE_NAME}: {install_hint(engine.name)}"


def local_choices(cat: Catalogue, facts: MachineFacts) -> list[tuple[ModelSpec, EngineSpec]]:
    """Every (model, engine) that fits this machine with an installed engine, smallest model first."""
    from model_specs import compat

    machine = facts.as_instance()
    found = []
    for model in sorted(cat.models.values(), key=lambda m: (m.weights_gib, m.id.lower())):
        for name in model.engines:
            engine = cat.engines[name]
            if name not in facts.engines:
                continue
            if compat.check(cat, model, engine, machine, ServiceType.local, "local").ok:
                found.append((model, engine))
                break
    return found
