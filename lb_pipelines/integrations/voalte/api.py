"""Voalte's shape: the replace-per-team list of `integrations/on_call_api.py`
(sign in as the background user, `PUT {base_url}/teams/{team_id}/oncall`, read back with GET);
teams are Voalte groups; the user id is the Voalte user id. A hospital whose Voalte interface differs adjusts `SHAPE` here (paths, list and user
keys), as docs/exports/secure_messaging.md says.
"""

from lb_pipelines.integrations.on_call_api import TeamListShape

SHAPE = TeamListShape(vendor="Voalte", sign_in_path="/auth/token", team_path="/teams/{team_id}/oncall",
                      list_key="oncall", user_key="user_id")
