import hookway
from systemhooks.work import handle_system_hook


@hookway.handler(source="gitlab", timeout_seconds=60)
async def on_system_hook(event: hookway.HandlerEvent) -> None:
    await handle_system_hook(event.event_name, event.payload)
