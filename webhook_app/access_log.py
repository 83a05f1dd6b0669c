"""What gunicorn's access log may say about a request: its id, the route it matched, status, size, duration and
the caller's keyed IP hash. Never the raw IP, the path as sent or the query string: a token or an e-mail put in a
query string would otherwise be kept in the log.

The app hands these fields to gunicorn's logger (`AccessLogger` in gunicorn.conf.py) in the WSGI environ, which
gunicorn passes to its access log once the response is sent.
"""

from flask import Flask, Response, request

from webhook_app.audit import request_id
from webhook_app.client_ip import client_ip_hash

ACCESS_FIELDS = "webhook_app.access_fields"
UNMATCHED_ROUTE = "-"


def init_app(app: Flask) -> None:
    @app.after_request
    def _expose_access_fields(response: Response) -> Response:
        rule = request.url_rule
        request.environ[ACCESS_FIELDS] = {
            "request_id": request_id(),
            # The rule (`/scheduler/jobs/<job_id>`), not the path: the path may carry ids a client made up.
            "route": rule.rule if rule is not None else UNMATCHED_ROUTE,
            "ip_hash": client_ip_hash() or "-",
        }
        return response
