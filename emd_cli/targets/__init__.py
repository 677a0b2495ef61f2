"""Deployment targets behind the lifecycle commands: `base` (the contract), `local` (this machine) and `aws`
(pipeline + CloudFormation). May import model_specs and, lazily, emd_stacks and boto3."""
