"""The OpenAI-compatible gateway (ECS Fargate behind the ALB): API keys, routing by "<model-id>/<tag>",
SageMaker runtime and HTTP engine backends. Run with `python -m serving.gateway`.

May import: model_specs.registry, serving.common, aiohttp (with its multidict), boto3 and botocore.
"""
