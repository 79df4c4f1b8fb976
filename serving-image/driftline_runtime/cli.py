"""`driftline-runtime`: one entry point for the jobs the runtime image does: train, serve, fetch an artifact from
object storage, and publish one to it."""

from __future__ import annotations

import sys

USAGE = "usage: driftline-runtime {train,serve,fetch,publish} [options]  (<command> --help for details)"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help"}:
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    # Imported lazily: the trainer needs no web stack and the server no training code at start-up.
    if command == "train":
        from driftline_runtime.train import main as train_main

        return train_main(rest)
    if command == "serve":
        from driftline_runtime.server import main as serve_main

        return serve_main(rest)
    if command == "fetch":
        from driftline_runtime.fetch import main as fetch_main

        return fetch_main(rest)
    if command == "publish":
        from driftline_runtime.publish import main as publish_main

        return publish_main(rest)
    print(f"driftline-runtime: unknown command {command!r}\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
