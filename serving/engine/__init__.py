"""The engine adapter inside every model image: starts the engine, serves the SageMaker contract on 8080
(GET /ping, POST /invocations) and /v1/* for ECS/EC2. Run with `python -m serving.engine`.

May import: serving.common, aiohttp, pydantic and the standard library (the engine image has no boto3
needs).
"""
