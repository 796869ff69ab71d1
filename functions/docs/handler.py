"""GET /v1/docs — Swagger UI over /v1/openapi.json, no auth.

Its script and stylesheet are served by this API (``GET /v1/docs/{asset}``), not by a CDN,
so the page works offline and behind firewalls.
"""

from aws_lambda_powertools.event_handler import Response, content_types

from datasets_core.http import Api
from routes import ROUTES

api = Api(ROUTES["docs"])

# Relative URLs: from /v1/docs they resolve to /v1/docs/<asset> and /v1/openapi.json, so the
# page works under any host and stage.
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Datasets API</title>
  <link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/swagger-ui-bundle.js" charset="utf-8"></script>
  <script>
    window.ui = SwaggerUIBundle({url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true});
  </script>
</body>
</html>
"""


@api.route
def docs():
    return Response(status_code=200, content_type=content_types.TEXT_HTML, body=PAGE)


handler = api.handler
