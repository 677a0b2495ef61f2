"""`emd list-supported-models`: the catalogue as a table or JSON, filtered by type/region/engine."""

from __future__ import annotations

import json
from typing import Any

import click

from emd_cli.options import default_region, json_option

MODEL_TYPES = ("llm", "vlm", "embedding", "rerank", "asr")


def supported_models(
    model_type: str | None = None, region: str | None = None, engine: str | None = None
) -> list[dict[str, Any]]:
    """One stable-keyed dict per model. With a region, only models that can be deployed there are kept
    (China flag and a catalogued instance that fits); with an engine, only models that run on it."""
    from model_specs import compat
    from model_specs.catalogue import catalogue
    from model_specs.errors import unknown_value_error
    from model_specs.regions import region_info
    from model_specs.schema import ServiceType

    cat = catalogue()
    if model_type is not None and model_type not in MODEL_TYPES:
        raise unknown_value_error("model type", model_type, MODEL_TYPES)
    eng = cat.engine(engine) if engine is not None else None
    where = region_info(default_region(region))
    rows = []
    for m in sorted(cat.models.values(), key=lambda m: (m.type.value, m.id.lower())):
        if model_type and m.type.value != model_type:
            continue
        if eng is not None and eng.name not in m.engines:
            continue
        if eng is None:
            smallest = compat.smallest_instance(cat, m, where.name)
        else:
            smallest = next(
                (
                    found[0]
                    for svc in (ServiceType.sagemaker_realtime, ServiceType.ec2)
                    if (found := compat.fitting_instances(cat, m, eng, svc, where.name))
                ),
                None,
            )
        if region is not None and (smallest is None or (where.is_china and not m.allow_china_region)):
            continue
        rows.append(
            {
                "model_id": m.id,
                "type": m.type.value,
                "params_b": m.params_b,
                "active_params_b": m.active_params_b,
                "experts": None if m.num_experts is None else f"{m.experts_per_token}/{m.num_experts}",
                "architecture": m.architecture,
                "num_layers": m.num_layers,
                "num_attention_heads": m.num_attention_heads,
                "num_kv_heads": m.num_kv_heads,
                "hidden_size": m.hidden_size,
                "reasoning": m.reasoning,
                "dtype": m.dtype,
                "weights_gib": round(m.weights_gib, 2),
                "context_length": m.context_length,
                "engines": list(m.engines),
                "default_engine": m.default_engine,
                "smallest_instance": smallest.name if smallest else None,
                "allow_china_region": m.allow_china_region,
                "hf_id": m.hf_id,
                "modelscope_id": m.modelscope_id,
                "description": m.description,
            }
        )
    return rows


@click.command("list-supported-models")
@click.option(
    "--type", "model_type", metavar="TYPE", help=f"Only this model type ({', '.join(MODEL_TYPES)})."
)
@click.option(
    "--region",
    metavar="REGION",
    help="Only models deployable in this region; the smallest instance is computed for it "
    "(default for that column: AWS_REGION, else us-east-1).",
)
@click.option(
    "--engine", metavar="ENGINE", help="Only models that run on this engine (vllm, tgi, llama.cpp, …)."
)
@json_option
def list_supported_models(
    model_type: str | None, region: str | None, engine: str | None, as_json: bool
) -> None:
    """List the models EMD can deploy.

    \b
    The smallest instance is the cheapest catalogued instance that fits the model (weights plus KV-cache
    headroom) on its default engine, SageMaker real-time first, else EC2.

    \b
    Examples:
      emd list-supported-models
      emd list-supported-models --type embedding --json
      emd list-supported-models --region cn-north-1 --engine vllm
    """
    rows = supported_models(model_type, region, engine)
    where = default_region(region)
    if as_json:
        click.echo(json.dumps({"region": where, "models": rows}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"EMD supported models ({len(rows)}; smallest instance in {where})")
    for col in ("model", "type", "size", "engines", "smallest instance", "China"):
        table.add_column(col, overflow="fold", no_wrap=col == "model")
    for r in rows:
        table.add_row(
            r["model_id"],
            r["type"],
            f"{r['params_b']:g}B"
            + (f" ({r['active_params_b']:g}B active, {r['experts']} experts)" if r["active_params_b"] else "")
            + f" {r['dtype']} ({r['weights_gib']:.1f} GiB), {r['num_layers']} layers,"
            + f" ctx {r['context_length']}"
            + (", reasoning" if r["reasoning"] else ""),
            ", ".join(r["engines"]),
            r["smallest_instance"] or "-",
            "yes" if r["allow_china_region"] else "no",
        )
    Console(width=max(Console().width, 120)).print(table)
