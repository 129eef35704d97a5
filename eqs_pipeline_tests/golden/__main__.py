"""`python -m eqs_pipeline_tests.golden`: rewrite the golden files (see the package docstring)."""

import sys

from eqs_pipeline_tests.golden import main

sys.exit(main())
