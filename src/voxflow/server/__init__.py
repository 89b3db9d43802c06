"""``voxflow serve``: the Azure Speech websocket protocol (the ``usp`` codec, sessions, turns)
and OpenAI's audio API (``openai_api``), one aiohttp application on one port (``app``)."""
