"""OpenAI's audio API on the speech server's port: transcriptions, translations, models.

``routes`` binds the endpoints to the server's engine; ``form`` reads a request's multipart
form (the upload streamed to a temporary file); ``render`` writes the response formats and the
server-sent events; ``errors`` holds OpenAI's error shape.
"""

from voxflow.server.openai_api.routes import add_routes

__all__ = ["add_routes"]
