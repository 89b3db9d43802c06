"""The Azure-Speech-compatible websocket service: the USP codec (``usp``) and its server."""
