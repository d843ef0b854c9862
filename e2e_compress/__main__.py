"""`python -m e2e_compress ...` is the same as the `e2e-compress` command."""

from e2e_compress.cli.main import run

if __name__ == "__main__":
    run()
