"""The local platform: a real Kubernetes control plane, S3 store, Redis and OpenID provider.

Everything here runs as plain processes on loopback, started from binaries built out of
registry packages (Go modules, PyPI wheels, Debian packages), so the product and its tests
talk to the same kinds of systems as in production without a container engine.
"""
