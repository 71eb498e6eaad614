"""The ASGI edge: routes, auth, body parsing, SSE writer and the one error renderer. No business rules."""
