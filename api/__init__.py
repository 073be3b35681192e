"""forum-qa over HTTP: a JSON API, an OpenAI-compatible chat endpoint and the web chat page."""
