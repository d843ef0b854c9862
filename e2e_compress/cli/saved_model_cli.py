"""`e2e-saved-model-cli`: TensorFlow's `saved_model_cli` with tfc's ops loaded.

Plain `saved_model_cli show --all --dir MODEL` prints the signatures, then
fails on the concrete functions with "Op type not registered
'CreateRangeEncoder'": it cannot import tensorflow_compression, which
registers the range coding ops. This is the same tool after that import; its
arguments are `saved_model_cli`'s.
"""

import sys


def main():
    import tensorflow_compression  # noqa: F401 - registers the range coding ops
    from tensorflow.python.tools import saved_model_cli

    sys.argv[0] = "saved_model_cli"
    saved_model_cli.main()
