"""The Lambda handler of a directly deployed model stack's build custom resource
(emd_constructs/model_build.py): runs the bootstrap's CodeBuild project on the stack's build inputs.
Ships as its own Lambda asset: imports boto3 only."""
