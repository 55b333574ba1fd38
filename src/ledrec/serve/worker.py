"""One worker process of ``ledrec serve --workers N``, started by its parent: ``python -m ledrec.serve.worker
CONFIG_JSON LOG_LEVEL`` (see :func:`ledrec.serve.supervisor.worker_main`)."""

import sys

from ledrec.serve.supervisor import worker_main

if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
