"""Names shared by the build stage, the pipeline and the model stacks.

A model stack that wants its engine image and weights from the build declares CloudFormation parameters
with these names; the build fills exactly the parameters the template declares (parameters.json is a
CloudFormation template-configuration file: {"Parameters": {...}, "Tags": {...}}).
"""

from model_specs import weights_cache

PARAM_ENGINE_IMAGE_URI = "EngineImageUri"
PARAM_MODEL_DATA_S3_URI = "ModelDataS3Uri"  # s3://<bucket>/models/<model-id>/<revision>/ (trailing slash)
WEIGHTS_PREFIX = weights_cache.WEIGHTS_PREFIX
COMPLETION_MARKER = ".emd-complete"
BUNDLE_TEMPLATE = "template.json"
BUNDLE_DEPLOYMENT = "deployment.json"
OUTPUT_PARAMETERS = "parameters.json"
# the build's exported variables (buildspec env.exported-variables) -> the state key each one carries
EXPORTED_OUTPUTS = {"EMD_ENGINE_IMAGE_URI": "engine_image_uri", "EMD_MODEL_DATA_S3_URI": "model_data_s3_uri"}
