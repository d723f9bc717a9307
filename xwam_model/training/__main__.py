"""`python -m xwam_model.training ...` (and `torchrun ... -m xwam_model.training ...`)."""

from .cli import main

raise SystemExit(main())
