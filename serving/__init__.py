"""What runs inside containers and CodeBuild: the gateway, the engine adapter, the build stage, the GitOps
pipeline's steps, and their Dockerfiles and buildspecs.

May import: model_specs only (plus aiohttp/httpx/boto3). Never aws_cdk, emd_stacks or emd_cli.
"""
