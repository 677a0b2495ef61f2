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
    (China flag and a catalogued instance that fits); with an engine, only models that run on it.
    Read from the compiled catalogue (model_specs.compiled): no YAML parsing, no pydantic, no rule evaluated
    twice for the same packaged catalogue."""
    from model_specs.compiled import compiled
    from model_specs.errors import unknown_value_error
    from model_specs.regions import region_info

    if model_type is not None and model_type not in MODEL_TYPES:
        raise unknown_value_error("model type", model_type, MODEL_TYPES)
    comp = compiled()
    if engine is not None and engine not in comp.engines:
        raise unknown_value_error("engine type", engine, comp.engines)
    where = region_info(default_region(region))
    chosen = [
        (m, engine or m["default_engine"])
        for m in comp.models
        if (not model_type or m["type"] == model_type) and (engine is None or engine in m["engines"])
    ]
    smallest = comp.smallest_instances(where.name, ((m["model_id"], e) for m, e in chosen))
    rows = []
    for m, e in chosen:
        name = smallest[(m["model_id"], e)]
        if region is not None and (name is None or (where.is_china and not m["allow_china_region"])):
            continue
        rows.append({**m, "smallest_instance": name})
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
    from emd_cli.text_table import format_table

    header = ("MODEL", "TYPE", "SIZE", "ENGINES", "SMALLEST INSTANCE", "CHINA")
    cells = [
        (
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
        for r in rows
    ]
    title = f"EMD supported models ({len(rows)}; smallest instance in {where})"
    click.echo(format_table(title, header, cells, fold=(header.index("SIZE"), header.index("ENGINES"))))
