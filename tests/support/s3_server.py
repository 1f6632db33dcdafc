"""Starts moto's S3-compatible server on 127.0.0.1 for corral's tests.

Prints the port it listens on, then serves until its stdin closes (when the
test process that started it exits, however it exits).
"""

import logging
import os
import sys

from moto.server import ThreadedMotoServer


def main() -> None:
    # One line per request would drown the test output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    print(port, flush=True)
    sys.stdin.read()
    os._exit(0)


if __name__ == "__main__":
    main()
