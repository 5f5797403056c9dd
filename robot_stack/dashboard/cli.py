"""`robot-stack monitor`: the web dashboard.

Without a ROS graph it is a recorded-store browser: ``robot-stack monitor --store episodes.zarr``
(session control answers 503). The session launcher (``robot-stack run``) starts the same app with a
LiveState fed from the ROS topics and a ControlSink that publishes commands.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from robot_stack.config import add_config_args, from_args

from .config import DashboardConfig, is_loopback

TOKEN_ENV = "ROBOT_STACK_DASHBOARD_TOKEN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", metavar="PATH", default=None,
                        help="episode store to browse and label (a directory or s3:// URL); none = live view only")
    add_config_args(parser, DashboardConfig)
    # The spelling operators expect, next to the generated --public_read.
    parser.add_argument("--public-read", dest="cfg::public_read", action="store_const", const=True, default=None,
                        help="let other machines read without the token (same as --public_read)")
    parser.epilog = (f"The operator token can also come from ${TOKEN_ENV} (kept out of the process list). "
                     "Open the printed URL: it carries the token in its #fragment, which the browser never sends.")


def start_url(host: str, port: int, token: str) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/#token={token}"


def run(args: argparse.Namespace) -> int:
    from robot_stack.cli import CliError

    from .app import create_app
    from .server import DashboardServer

    base = None
    if getattr(args, "cfg::token", None) is None and os.environ.get(TOKEN_ENV):
        base = DashboardConfig(token=os.environ[TOKEN_ENV])
    try:
        config = from_args(DashboardConfig, args, base=base)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    store = None
    if args.store:
        from robot_stack.store import StoreError

        from .store_source import open_store
        try:
            store = open_store(args.store)
        except (StoreError, OSError) as exc:
            raise CliError(f"cannot open episode store {args.store!r}: {exc}") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    app = create_app(config, store=store)
    if not is_loopback(config.host):
        print(f"robot-stack monitor: listening on {config.host}: reads from other machines "
              f"{'are open (--public-read)' if config.public_read else 'need the token'}; writes always need it",
              file=sys.stderr)
    try:
        server = DashboardServer(app, config.host, config.port, log_level="info").start()
    except RuntimeError as exc:
        raise CliError(str(exc)) from None
    print(f"robot-stack monitor: {'store ' + args.store if args.store else 'no store'}, no robot connected "
          f"(store browser)", file=sys.stderr)
    print(f"robot-stack monitor: open {start_url(config.host, server.port, app.state.token)}", flush=True)
    print(f"robot-stack monitor: operator token: {app.state.token}", flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
