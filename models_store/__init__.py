"""Models: Model files in the tenant's bucket (<model>/<version>/<path>) and the upload protocols
(DECISIONS §7).

This app is a skeleton until its issue lands; the rooms below are where the code goes.
"""
