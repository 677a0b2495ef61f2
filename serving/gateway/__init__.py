"""The OpenAI-compatible gateway (ECS Fargate behind the ALB, or a local process): API keys, routing by
"<model-id>/<tag>", SageMaker runtime, async and HTTP engine backends. Run with `python -m serving.gateway`.

May import: model_specs.registry, serving.common, aiohttp (with its multidict), uvloop, boto3 and botocore.
"""
