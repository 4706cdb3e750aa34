"""The evidence store: bundles and cases in S3-compatible object storage.

Every call into boto3 lives in this package (``client.py`` owns the session and
translates botocore's errors into :class:`StoreError`); ``forensics`` never
imports boto3 and only ever sees a byte stream.
"""
