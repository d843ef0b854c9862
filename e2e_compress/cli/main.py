"""`e2e-compress COMMAND [flags] [args]`: the single entry point.

Commands: train, export, compress, decompress, info, models, evaluate, report,
fuzz, benchmark. Any error a user can cause ends in one line on stderr and
exit status 1 (2 for usage errors); `--debug` shows the traceback instead.
"""

import os
import sys

# TensorFlow's C++ start-up chatter is not for users of a command-line tool.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags, logging  # noqa: E402

from e2e_compress.cli import (  # noqa: E402
    check_main, codec_main, eval_main, report_main, train_main)

FLAGS = flags.FLAGS
flags.DEFINE_bool("debug", False, "Show tracebacks of errors.")

COMMANDS = {
    "train": train_main.main,
    "export": train_main.export_main,
    "compress": codec_main.compress_main,
    "decompress": codec_main.decompress_main,
    "info": codec_main.info_main,
    "models": codec_main.models_main,
    "evaluate": eval_main.main,
    "report": report_main.main,
    "fuzz": check_main.fuzz_main,
    "benchmark": check_main.benchmark_main,
}

USAGE = ("usage: e2e-compress {" + ",".join(COMMANDS) + "} [flags] [args];"
         " e2e-compress COMMAND --helpfull lists every flag")


def _main(argv):
    command, args = argv[1], [argv[0]] + argv[2:]
    try:
        status = COMMANDS[command](args)
    except KeyboardInterrupt:
        print("e2e-compress: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the CLI's one error boundary
        if FLAGS.debug:
            raise
        message = str(e) or type(e).__name__
        print(f"e2e-compress {command}: error: {message}", file=sys.stderr)
        if getattr(e, "stuck_thread", False):
            _exit_now(1)
        return 1
    return status or 0


def _exit_now(status: int) -> None:
    """Ends the process at once: a native decoder thread that cannot be
    stopped would otherwise keep the interpreter from exiting."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def run(argv=None):
    """Console-script entry point."""
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] not in COMMANDS:
        got = argv[1] if len(argv) > 1 else "nothing"
        if len(argv) > 1 and argv[1] in ("-h", "--help", "help"):
            print(USAGE)
            sys.exit(0)
        print(f"e2e-compress: expected a command ({', '.join(COMMANDS)}),"
              f" got {got}", file=sys.stderr)
        sys.exit(2)
    logging.set_verbosity(logging.INFO if argv[1] == "train" else logging.WARNING)
    # Keep the command in argv so absl parses the flags after it.
    app.run(_main, argv=argv, flags_parser=_parse_flags)


# Flags that name files or folders. A shell expands `~` only at the start
# of a word, so in `--train_dir=~/run` it reaches us as typed.
PATH_FLAGS = ("train_glob", "validation_glob", "init_from", "train_dir",
              "export_to", "from_model", "model", "output_dir", "images",
              "results_dir", "compare_image", "json")


def _parse_flags(argv):
    try:
        rest = FLAGS(argv[:1] + argv[2:])
    except flags.Error as e:
        print(f"e2e-compress {argv[1]}: error: {e}", file=sys.stderr)
        sys.exit(2)
    for name in PATH_FLAGS:
        if FLAGS[name].value:
            FLAGS[name].value = os.path.expanduser(FLAGS[name].value)
    return [rest[0], argv[1]] + rest[1:]
