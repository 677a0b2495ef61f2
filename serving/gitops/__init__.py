"""The steps the EMD-GitOps pipeline runs in CodeBuild (`python3 -m serving.gitops build|smoke|prune|check`):
API key secrets and the bootstrap's build per wave, the smoke test through the gateway, the prune of stacks
that left models.yaml. May import model_specs only (plus boto3, httpx): they run without the CDK or the CLI.
"""
