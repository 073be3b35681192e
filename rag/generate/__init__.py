"""Stage 4, generate: an LLM rewrites the extractive answer, and every sentence it writes is checked.

``llm`` (a client for any OpenAI-compatible server) → ``generation`` (the prompt, the stream, the fallbacks)
→ ``grounding`` (keep only the sentences the cited passages support). Imports from the earlier stages.
"""
