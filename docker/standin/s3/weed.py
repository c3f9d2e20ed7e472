#!/usr/bin/python3
"""Stand-in for SeaweedFS's `weed server ... -s3 -s3.port=N` (docker/standin/s3): moto's S3 server on
port N, plus SeaweedFS's `GET /status` (the health check). Every other flag is accepted and ignored;
moto accepts any credentials and keeps its objects in memory."""

import sys

from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple
from werkzeug.wrappers import Response


def main(argv: list[str]) -> None:
    if "--help" in argv or "-h" in argv:
        print(__doc__)
        return
    port = 8333
    for arg in argv:
        if arg.startswith("-s3.port="):
            port = int(arg.split("=", 1)[1])
    s3 = DomainDispatcherApplication(create_backend_app)

    def app(environ, start_response):
        if environ.get("PATH_INFO") == "/status":
            return Response('{"status": "ok", "standin": "moto"}', mimetype="application/json")(environ, start_response)
        return s3(environ, start_response)

    print(f"moto S3 (stand-in for SeaweedFS) on 0.0.0.0:{port}", flush=True)
    run_simple("0.0.0.0", port, app, threaded=True, request_handler=MotoRequestHandler)  # noqa: S104


if __name__ == "__main__":
    main(sys.argv[1:])
