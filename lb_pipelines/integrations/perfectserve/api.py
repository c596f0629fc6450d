"""PerfectServe Clinical Collaboration's shape: the replace-per-team list of `integrations/on_call_api.py`
(sign in as the background user, `PUT {base_url}/teams/{team_id}/oncall`, read back with GET);
teams are PerfectServe's on-call groups; the user id is the PerfectServe user id
(often the NPI or an employee id, in `unique_id`). A hospital whose PerfectServe interface differs adjusts `SHAPE` here (paths, list and user
keys), as docs/exports/secure_messaging.md says.
"""

from lb_pipelines.integrations.on_call_api import TeamListShape

SHAPE = TeamListShape(vendor="PerfectServe", sign_in_path="/auth/token", team_path="/teams/{team_id}/oncall",
                      list_key="oncall", user_key="user_id")
