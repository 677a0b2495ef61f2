"""The starter models.yaml `emd gitops init` writes: one small deployment that is valid in the chosen
region (checked with the same loader the pipeline uses), its hourly price in a comment, every option
commented."""

from __future__ import annotations

from model_specs.cost import estimate_cost
from model_specs.errors import EmdUserError
from model_specs.models_file import load_models_file

STARTER_MODEL = "Qwen2.5-0.5B-Instruct"
STARTER_INSTANCE = "g4dn.xlarge"
STARTER_SERVICES = ("sagemaker_realtime", "ecs", "ec2")  # the first one valid in the region is used

TEMPLATE = """\
# models.yaml: the model deployments the {pipeline} pipeline keeps in AWS ({source}, branch {branch}).
# Every change merged to {branch} runs the pipeline: it validates this file with the rules of `emd deploy`,
# builds what changed (weights cached by revision, engine images by content hash) and deploys in waves,
# each followed by a smoke test through the gateway.
# Before you push:   emd gitops validate     (no AWS call)
#                    emd gitops plan         (what would be added, changed, removed; hourly cost)

# prune: true deletes the model stacks this pipeline created when you remove them from this file.
prune: true

deployments:
  # clients call "<model_id>/<tag>", here "{model}/dev", with the key in Secrets Manager:
  #   aws secretsmanager get-secret-value --secret-id emd/{model}/dev/api-key \\
  #       --query SecretString --output text
  - model_id: {model}
    tag: dev
    instance: {instance}        # {price}
    engine: vllm
    service: {service}
    # extra_params:              # the keys of `emd deploy --extra-params`, e.g.
    #   service_params: {{min_capacity: 1, max_capacity: 2}}
    # account: "111111111111"    # another account (cdk bootstrap --trust <this account>, then emd bootstrap)
    # region: us-west-2          # another region (default: {region})

# Instead of `deployments`: named environments, deployed in order, each in waves.
# environments:
#   staging:
#     region: {region}
#     waves:
#       - deployments:
#           - {{model_id: {model}, tag: staging, instance: {instance}, service: {service}}}
#   prod:
#     account: "222222222222"
#     waves:
#       - name: canary
#         deployments:
#           - {{model_id: {model}, tag: prod, instance: {instance}, service: {service}}}
"""


def starter_models_yaml(*, region: str, pipeline: str, source: str, branch: str) -> str:
    problems = []
    for service in STARTER_SERVICES:
        est = estimate_cost(
            region=region, instance_type=STARTER_INSTANCE, service_type=service, model_size_gb=1
        )
        price = f"{est.symbol}{est.hourly}/hour" if est.hourly is not None else "price not in the price book"
        text = TEMPLATE.format(
            pipeline=pipeline,
            source=source,
            branch=branch,
            region=region,
            model=STARTER_MODEL,
            instance=STARTER_INSTANCE,
            service=service,
            price=f"{price} ({est.target.label if est.target else service})",
        )
        try:
            load_models_file("models.yaml", default_region=region, text=text)
            return text
        except EmdUserError as exc:
            problems.append(str(exc))
    raise EmdUserError(f"no starter deployment is valid in {region}: " + "; ".join(problems))
