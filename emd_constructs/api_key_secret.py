"""A directly deployed model stack's API key (`cdk deploy -c model_id=…`; `emd deploy` and GitOps create
theirs before the stack): a Secrets Manager secret named emd/<model-id>/<tag>/api-key, the name the gateway
and `emd keys rotate` use, whose value Secrets Manager generates. The template holds only the generator's
settings, which never change, so a later `cdk deploy` leaves a rotated value alone; `cdk destroy` deletes
the secret."""

from __future__ import annotations

import aws_cdk as cdk
import aws_cdk.aws_secretsmanager as secretsmanager
from constructs import Construct

from emd_constructs.nag import acknowledge
from model_specs.deployment import Deployment

KEY_LENGTH = 48  # letters and digits: ~285 bits


class ApiKeySecret(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, deployment: Deployment) -> None:
        super().__init__(scope, construct_id)
        name = deployment.api_key_secret_name
        if name is None:
            raise ValueError(f"{deployment.route} is public: it has no API key")
        self.secret_name = name
        self.secret = secretsmanager.Secret(
            self,
            "Secret",
            secret_name=name,
            description=f"EMD API key of {deployment.route} (clients send it as a Bearer token)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=KEY_LENGTH, exclude_punctuation=True, include_space=False
            ),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        acknowledge(
            self.secret,
            "AwsSolutions-SMG4",
            "An API key is rotated on demand with `emd keys rotate` (or PutSecretValue): clients must be "
            "given the new key, which a scheduled rotation Lambda could not do.",
        )
