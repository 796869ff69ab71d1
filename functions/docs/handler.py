"""GET /v1/docs — Swagger UI over /v1/openapi.json, no auth."""

from aws_lambda_powertools.event_handler import Response, content_types

from datasets_core.http import Api
from routes import ROUTES

api = Api(ROUTES["docs"])

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Datasets API</title>
  <link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
  <script>
    SwaggerUIBundle({url: "openapi.json", dom_id: "#swagger-ui"});
  </script>
</body>
</html>
"""


@api.route
def docs():
    return Response(status_code=200, content_type=content_types.TEXT_HTML, body=PAGE)


handler = api.handler
