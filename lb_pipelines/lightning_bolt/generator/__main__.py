"""`python -m lb_pipelines.lightning_bolt.generator`."""

from lb_pipelines.lightning_bolt.generator import main

raise SystemExit(main())
