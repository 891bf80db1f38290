"""Who may call the control plane, and what they may do: SigV4 identities and IAM-style policies.

Layer 2 (beside the store, translation and xDS): pure rules, no HTTP server. The API's
middleware (:mod:`meshplane.api.auth`) hands this package plain values (method, URL,
headers, body) and gets back a principal or an error.

- :mod:`~meshplane.auth.signatures`: verifies an AWS SigV4 signature with botocore's own
  canonicalisation (the code boto3 and the ``aws`` CLI sign with), constant-time.
- :mod:`~meshplane.auth.principals`: access keys, their policies, the ``D/credentials``
  shared-credentials file and the 0600 ``D/principals.json`` they persist in.
- :mod:`~meshplane.auth.policies`: IAM-style policy documents and their evaluation
  (explicit Deny wins, whatever is not allowed is denied).
- :mod:`~meshplane.auth.actions`: the one table from an HTTP route to an action
  (``appmesh:DescribeRoute``, ``meshplane:ApplyManifests``) and the resource ARN it touches.
- :mod:`~meshplane.auth.errors`: the four rejections, rendered like App Mesh's errors.

May import :mod:`meshplane.model`, :mod:`meshplane.kit`, botocore and the standard library.
"""
