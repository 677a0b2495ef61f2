"""The EMD catalogue as data (YAML under data/) with its pydantic schema, compatibility rules and queries.

May import: pydantic, yaml and the standard library only (no aws_cdk, no boto3): everything else imports this.
"""
