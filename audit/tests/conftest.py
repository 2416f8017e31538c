"""The unit tests' test-only identity provider and API client (defined once, in inferencemgmt/tests)."""

from inferencemgmt.tests.conftest import api, issuer  # noqa: F401 -- fixtures shared with these tests
