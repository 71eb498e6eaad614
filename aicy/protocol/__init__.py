"""Pure models of the OpenAI wire (Chat Completions, Responses, Models, errors) and SSE; no I/O."""
