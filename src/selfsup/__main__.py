"""`python -m selfsup` (and `torchrun -m selfsup`) runs the command line."""

from selfsup.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
