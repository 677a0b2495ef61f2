"""`python -m serving.engine [serve]`: the model container's entry point (SageMaker passes `serve`).
`python -m serving.engine fetch-weights s3://… <dir>` copies the weights instead (ECS and EC2 hosts)."""

from __future__ import annotations

import logging
import sys

from serving.common.http_server import run_app
from serving.engine.adapter import ENGINE, create_app
from serving.engine.settings import AdapterSettings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stdout)
    if sys.argv[1:2] == ["fetch-weights"]:
        from serving.engine.weights import main as fetch_weights

        sys.exit(fetch_weights(sys.argv[2:]))
    settings = AdapterSettings.from_env()
    app = create_app(settings)
    run_app(app, host=settings.host, port=settings.port, shutdown_timeout=settings.drain_seconds)
    sys.exit(1 if app[ENGINE].failed else 0)


if __name__ == "__main__":
    main()
