"""Test doubles that are real servers or real steps on 127.0.0.1: a Hugging Face-compatible hub (hf_server),
the moto-backed AWS double and its pipeline executor (aws_double, pipeline_double, build_env,
fake_build_tools), the thread that serves an aiohttp app (servers), the SageMaker runtime's wire format
(sagemaker_wire). May import the project's packages, moto, aiohttp and pytest."""
