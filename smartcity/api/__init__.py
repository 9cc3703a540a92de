"""What the REST API functions share: JWT auth and roles, problem+json errors, cursor pagination, read caching,
the FastAPI app factory, and the merged OpenAPI document the gateway serves."""

from smartcity.extras import require

# pyjwt is in the runtime extra: the gateway and the ingest functions verify tokens with this package too, so
# importing it needs no more than the runtime extra (the Swagger UI, the api extra's own part, is checked where used).
require("runtime", "jwt")
