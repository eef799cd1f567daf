"""``python -m dinov3_mm.deploy serve REPO``: a local Triton on loopback.

Starts the ``tritonserver`` of the ``nvidia-pytriton`` wheel on 127.0.0.1
against a model repository (use the ``triton_python`` one that
``tools/deploy.py`` writes), prints its endpoints and serves until Ctrl+C or
SIGTERM. A port already taken by another process, or a server that exits
while starting, ends the command with a message (the server log's last lines)
and exit code 1, before "serving" is printed. The server's temporary folder
is removed however the command ends.
"""
import argparse
import signal
import time

from dinov3_mm.utils.cli import UserError, add_debug_argument, cli_main

from .server import PortInUseError, TritonServer, TritonServerError

PORT_OPTIONS = dict(http='--http-port', grpc='--grpc-port',
                    metrics='--metrics-port')


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m dinov3_mm.deploy',
                                     description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    serve = sub.add_parser('serve', help='serve a model repository')
    serve.add_argument('repository')
    serve.add_argument('--http-port', type=int, default=8000)
    serve.add_argument('--grpc-port', type=int, default=8001)
    serve.add_argument('--metrics-port', type=int)
    add_debug_argument(serve)
    return parser.parse_args(argv)


def _start(server: TritonServer) -> None:
    try:
        server.start()
    except PortInUseError as exc:
        raise UserError(f'{exc}; choose another with '
                        f'{PORT_OPTIONS[exc.role]}') from exc
    except TritonServerError as exc:
        raise UserError(f'{exc}'.rstrip()) from exc


def main(argv=None) -> int:
    args = parse_args(argv)
    # SIGINT and SIGTERM stop the server, also where the caller started
    # this process with SIGINT ignored (background jobs, test workers)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server = TritonServer(args.repository, http_port=args.http_port,
                              grpc_port=args.grpc_port,
                              metrics_port=args.metrics_port)
    except TritonServerError as exc:
        raise UserError(str(exc)) from exc
    try:
        _start(server)
        print(f'serving {args.repository}: HTTP {server.http_url}, gRPC '
              f'{server.grpc_url} (Ctrl+C stops)', flush=True)
        while server.is_running():
            time.sleep(0.5)
        tail = server.log_tail(2000)
    except KeyboardInterrupt:  # start() stops a server it was starting
        return 0 if server.is_running() else 130
    finally:
        server.stop()
    raise UserError('tritonserver exited unexpectedly; its log ends with:\n'
                    + tail)


if __name__ == '__main__':
    cli_main(main)
