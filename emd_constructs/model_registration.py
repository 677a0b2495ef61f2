"""Registers a deployment in the gateway's registry: an SSM String parameter at /emd/models/<model-id>/<tag>
holding RegistryEntry JSON (model_specs/registry.py). Only the API key secret's *name* goes in; the gateway
reads the value. Values may be tokens (endpoint names, private IPs): Stack.to_json_string renders them with
Fn::Join."""

from __future__ import annotations

import aws_cdk as cdk
import aws_cdk.aws_ssm as ssm
from constructs import Construct

from model_specs.deployment import Deployment
from model_specs.registry import RegistryEntry


class ModelRegistration(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: Deployment,
        backend: str,
        endpoint_name: str | None = None,
        base_url: str | None = None,
        extra: dict[str, str] | None = None,
        api_key_secret_name: str | None = None,
    ) -> None:
        """api_key_secret_name: an existing secret the deployment's key is in, instead of its own
        (emd/<model-id>/<tag>/api-key)."""
        super().__init__(scope, construct_id)
        d = deployment
        entry = RegistryEntry(
            model_id=d.model_id,
            model_tag=d.model_tag,
            model_type=d.model.type.value,
            service_type=d.service_type.value,
            backend=backend,  # type: ignore[arg-type]
            endpoint_name=endpoint_name,
            base_url=base_url,
            api_key_secret_name=api_key_secret_name or d.api_key_secret_name,
            public=d.extra_params.service_params.public,
            region=d.region,
            stack_name=d.stack_name,
        )
        value = {**entry.model_dump(mode="json", exclude_none=True), **(extra or {})}
        self.entry = entry
        self.parameter = ssm.StringParameter(
            self,
            "Parameter",
            parameter_name=d.registry_parameter_name,
            string_value=cdk.Stack.of(self).to_json_string(value),
            description=f"EMD registry entry for {d.route}",
            tier=ssm.ParameterTier.STANDARD,
        )
