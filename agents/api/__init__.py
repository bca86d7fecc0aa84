"""The agent JSON API (`/api/v1/`): `schemas` defines its shapes once, `endpoints` its
operations and the `api` object that `helpdesk/urls.py` mounts."""
