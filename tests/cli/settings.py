"""Settings of the API, worker and controller the CLI tests start: the product's, plus a queue of their own.

The Redis databases of the local platform are shared by every suite running on it; a Celery queue
named for this test session keeps our tasks from other suites' workers (and theirs from ours).
"""

import os

from inferencemgmt.settings import *  # noqa: F403

CELERY_TASK_DEFAULT_QUEUE = os.environ.get("IMM_CLI_TEST_QUEUE", "celery")
