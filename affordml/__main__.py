"""`python -m affordml`: the same entry point as the `affordml` console script."""

from affordml.cli.main import run

if __name__ == "__main__":
    run()
