"""`python -m rlm_code` runs the same command line as the `rlm-code` script."""

from rlm_code.cli.main import main

raise SystemExit(main())
