"""Every AWS call a function makes must be allowed by its role (SPEC §11).

moto does not enforce IAM, so a missing grant would pass every local test and fail on AWS.
``recorder`` notes, during the integration tests, each AWS call a function's handler makes;
``policy`` turns those calls into IAM requests and evaluates them against the roles of the
synthesized template (``tests/infra/test_iam_calls.py``).
"""
