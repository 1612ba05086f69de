"""The GraphQL gateway and composition root: settings -> applications -> schema -> ASGI app."""
