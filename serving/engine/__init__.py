"""The engine adapter inside every model image: starts the engine, serves the SageMaker contract on 8080
(GET /ping, POST /invocations) and /v1/* for ECS/EC2, and bridges the engine to the OpenAI API
(openai_compat). Run with `python -m serving.engine`; `fetch-weights` copies weights from S3 for ECS/EC2.

May import: serving.common, aiohttp, pydantic, the standard library, and boto3 (fetch-weights only).
"""
