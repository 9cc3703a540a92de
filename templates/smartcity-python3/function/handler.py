"""A new smartcity function: replace this with your handler (one of the two kinds below, not both)."""

from pydantic import BaseModel

from smartcity.runtime import Context, Event, cloudevent_function


class Greeting(BaseModel):
    name: str


@cloudevent_function(data=Greeting)
def handle(event: Event[Greeting], context: Context):
    context.logger.info("hello %s", event.data.name)
    return None  # or context.new_event("city.<stream>.<what>.v1", data=..., id=f"{event.id}:<what>")
