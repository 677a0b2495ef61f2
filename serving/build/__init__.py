"""The build stage that runs in the bootstrap's CodeBuild project (buildspec.yml): weights to the S3 cache
(sources, transfer, weights), engine image to ECR (images), parameters.json for the deploy stage (prepare).
Imports model_specs only."""
