"""CDN integrations: switchers that make a CDN follow a channel pointer (see docs/cloudfront.md).

Importing this package does not import any cloud SDK; boto3 is loaded on first use.
"""

from .cloudfront import (CloudFrontSettings, EdgeKeySwitcher, FunctionDeployment, InvalidationSwitcher,
                         OriginPathSwitcher, cloudfront_function_code, deploy_cloudfront_function,
                         invalidation_paths, switchers_from_settings)

__all__ = [
    "CloudFrontSettings",
    "EdgeKeySwitcher",
    "FunctionDeployment",
    "InvalidationSwitcher",
    "OriginPathSwitcher",
    "cloudfront_function_code",
    "deploy_cloudfront_function",
    "invalidation_paths",
    "switchers_from_settings",
]
