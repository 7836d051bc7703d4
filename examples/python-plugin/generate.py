#!/usr/bin/env python3
"""Generates the Python message and service code the example plugin imports, into gen/ (git-ignored).

Run it with the Python that has grpcio-tools installed (see requirements.txt):

    python3 generate.py            # writes ./gen
    python3 generate.py /some/dir  # writes elsewhere; point STOWAGE_EXAMPLE_GEN at it

Sources: the Stowage protos in proto/stowage/v1 and go-plugin's controller and stdio protos in
third_party/proto/plugin. go-plugin's protos are mapped to the import path `goplugin/` (protoc's
VIRTUAL=DISK form of -I): their proto package stays `plugin`, so the services keep their wire
names (`plugin.GRPCController`, `plugin.GRPCStdio`), but the generated Python package is called
`goplugin`, not `plugin`. Generated as `plugin`, a directory without __init__.py (a namespace
package), it would lose to any module named `plugin` on the path, such as a script named plugin.py
(like this example's), even with gen/ first on sys.path.

The health service comes from the grpcio-health-checking package, not from generated code: generating
grpc/health/v1/health.proto would create a package `grpc` that shadows grpcio itself.
"""
import os
import sys

from grpc_tools import protoc

import grpc_tools

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def generate(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    # grpc_tools ships the well-known protos (google/protobuf/*.proto) that our protos import.
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{os.path.join(ROOT, 'proto')}",
        f"-Igoplugin={os.path.join(ROOT, 'third_party', 'proto', 'plugin')}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        "stowage/v1/plugin_info.proto",
        "stowage/v1/object_store.proto",
        "goplugin/grpc_controller.proto",
        "goplugin/grpc_stdio.proto",
    ]
    status = protoc.main(args)
    if status != 0:
        sys.exit(f"generate.py: protoc failed with status {status}")


if __name__ == "__main__":
    generate(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "gen"))
