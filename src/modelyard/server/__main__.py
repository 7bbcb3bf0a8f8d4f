"""`python -m modelyard.server [--host H] [--port P]`: the server without the CLI's imports."""

from __future__ import annotations

import argparse

from modelyard.core.config import load_settings
from modelyard.server.run import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m modelyard.server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    serve(load_settings(), args.host, args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
