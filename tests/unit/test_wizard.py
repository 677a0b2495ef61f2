"""The deploy wizard: only what the compatibility rules accept is offered, each with its price, and the
prompts work through prompt_toolkit's pipe input (no terminal needed)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import click
import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from emd_cli.wizard import Answers, deploy_wizard, engine_choices, instance_choices, service_choices
from model_specs import compat
from model_specs.catalogue import catalogue
from model_specs.schema import ServiceType

DOWN, ENTER = "\x1b[B", "\r"


@contextmanager
def keys(*parts: str) -> Iterator[dict[str, object]]:
    """Keystrokes sent one group at a time (completions and menus render between them)."""
    with create_pipe_input() as pipe:

        def feed() -> None:
            for part in parts:
                time.sleep(0.3)
                pipe.send_text(part)

        threading.Thread(target=feed, daemon=True).start()
        yield {"input": pipe, "output": DummyOutput()}


def test_only_fitting_instances_are_offered_cheapest_first_with_prices():
    cat = catalogue()
    model, engine = cat.model("Qwen2.5-72B-Instruct"), cat.engine("vllm")
    offered = instance_choices(cat, model, engine, ServiceType.sagemaker_realtime, "us-east-1")
    names = [c.value for c in offered]
    assert names and "g5.2xlarge" not in names  # 72B does not fit one A10G
    for choice in offered:
        instance = cat.instance(choice.value)
        verdict = compat.check(cat, model, engine, instance, ServiceType.sagemaker_realtime, "us-east-1")
        assert verdict.ok and choice.label.rstrip().endswith("/h")


def test_engines_and_services_offered_are_the_compatible_ones():
    cat = catalogue()
    model = cat.model("Qwen2.5-7B-Instruct")
    engines = engine_choices(cat, model, ServiceType.ecs, "us-east-1")
    assert engines[0].value == model.default_engine and "(default)" in engines[0].label
    assert {c.value for c in engines} <= set(model.engines)
    services = service_choices(cat, model, "us-east-1", local_ok=False)
    assert [c.value for c in services] == ["sagemaker_realtime", "sagemaker_async", "ecs", "ec2"]
    assert all("from $" in c.label for c in services)
    china = service_choices(cat, model, "cn-north-1", local_ok=True)
    assert all("¥" in c.label for c in china if c.value != "local") and china[-1].value == "local"


def test_the_whole_wizard_through_a_pipe():
    with keys("qwen7instr", "\t", ENTER, ENTER, ENTER, DOWN + DOWN, ENTER) as io:
        answers = deploy_wizard(
            model_id=None, service_type=None, engine_type=None, instance_type=None, region="us-east-1", **io
        )
    cat = catalogue()
    model = cat.model("Qwen2.5-7B-Instruct")
    third = compat.fitting_instances(
        cat, model, cat.engine("vllm"), ServiceType.sagemaker_realtime, "us-east-1"
    )[2]
    assert answers == Answers("Qwen2.5-7B-Instruct", "sagemaker_realtime", "vllm", third.name)


def test_only_missing_flags_are_asked():
    with keys(ENTER) as io:
        answers = deploy_wizard(
            model_id="Qwen2.5-7B-Instruct",
            service_type="ec2",
            engine_type="vllm",
            instance_type=None,
            region="us-west-2",
            **io,
        )
    assert answers.service_type == "ec2" and answers.instance_type is not None


def test_cancel_aborts():
    with keys("\x03") as io, pytest.raises(click.Abort):
        deploy_wizard(
            model_id=None, service_type=None, engine_type=None, instance_type=None, region="us-east-1", **io
        )
