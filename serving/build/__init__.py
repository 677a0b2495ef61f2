"""The build stage that runs in the bootstrap's CodeBuild project (buildspec.yml): weights to the S3 cache,
engine image to ECR, parameters.json for the CloudFormation deploy stage. Imports model_specs only."""
