"""What the REST API functions share: JWT auth and roles, problem+json errors, cursor pagination, read caching,
the FastAPI app factory, and the merged OpenAPI document the gateway serves."""

from smartcity.extras import require

require("runtime", "jwt")  # pyjwt: the runtime extra (ingest tokens and /system use it too)
require("api", "swagger_ui")
