"""Amtelco: each mapped team's on-call list (now, then next), replaced per team on every change."""

from lb_pipelines.integrations.amtelco.api import SHAPE
from lb_pipelines.integrations.on_call_api import team_list_push

INTEGRATION = team_list_push(slug="amtelco", shape=SHAPE)
