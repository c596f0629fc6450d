"""Amtelco 1Call's shape: the replace-per-team list of `integrations/on_call_api.py`
(sign in as the background user, `PUT {base_url}/teams/{team_id}/oncall`, read back with GET);
teams are 1Call on-call schedules; the user id is the 1Call directory (messaging) id. A hospital whose Amtelco interface differs adjusts `SHAPE` here (paths, list and user
keys), as docs/exports/secure_messaging.md says.
"""

from lb_pipelines.integrations.on_call_api import TeamListShape

SHAPE = TeamListShape(vendor="Amtelco", sign_in_path="/auth/token", team_path="/teams/{team_id}/oncall",
                      list_key="oncall", user_key="user_id")
