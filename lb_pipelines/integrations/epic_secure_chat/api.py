"""Epic Secure Chat's shape: the replace-per-team list of `integrations/on_call_api.py`
(sign in as the background user, `PUT {base_url}/teams/{team_id}/oncall`, read back with GET);
teams are Secure Chat on-call teams (not Epic On-Call Finder's); the user id is the
Epic user id Secure Chat knows. A hospital whose Epic Secure Chat interface differs adjusts `SHAPE` here (paths, list and user
keys), as docs/exports/secure_messaging.md says.
"""

from lb_pipelines.integrations.on_call_api import TeamListShape

SHAPE = TeamListShape(vendor="Epic Secure Chat", sign_in_path="/auth/token", team_path="/teams/{team_id}/oncall",
                      list_key="oncall", user_key="user_id")
