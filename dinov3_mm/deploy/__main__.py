"""``python -m dinov3_mm.deploy serve REPO``: a local Triton on loopback.

Starts the ``tritonserver`` of the ``nvidia-pytriton`` wheel on 127.0.0.1
against a model repository (use the ``triton_python`` one that
``tools/deploy.py`` writes), prints its endpoints and serves until Ctrl+C.
"""
import argparse
import signal
import sys
import time

from .server import TritonServer, TritonServerError


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m dinov3_mm.deploy',
                                     description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    serve = sub.add_parser('serve', help='serve a model repository')
    serve.add_argument('repository')
    serve.add_argument('--http-port', type=int, default=8000)
    serve.add_argument('--grpc-port', type=int, default=8001)
    serve.add_argument('--metrics-port', type=int)
    args = parser.parse_args(argv)
    # SIGINT and SIGTERM stop the server, also where the caller started
    # this process with SIGINT ignored (background jobs, test workers)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    server = TritonServer(args.repository, http_port=args.http_port,
                          grpc_port=args.grpc_port,
                          metrics_port=args.metrics_port)
    try:
        server.start()
    except TritonServerError as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # start() has stopped the server
        return 130
    print(f'serving {args.repository}: HTTP {server.http_url}, gRPC '
          f'{server.grpc_url} (Ctrl+C stops)', flush=True)
    try:
        while server.is_running():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
