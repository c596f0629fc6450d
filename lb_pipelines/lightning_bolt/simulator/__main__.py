"""`python -m lb_pipelines.lightning_bolt.simulator`."""

from lb_pipelines.lightning_bolt.simulator import main

raise SystemExit(main())
