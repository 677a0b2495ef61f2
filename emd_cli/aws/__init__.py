"""The one boto3 layer of the CLI: sessions and clients (`session`), errors as one line (`errors`),
stacks through change sets (`stacks`), pipeline executions (`pipeline`), quotas, the SageMaker transport.
May import model_specs, boto3/botocore, rich; only commands that call AWS import it (never `emd --help`)."""
