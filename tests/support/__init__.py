"""Test doubles that are real servers on 127.0.0.1: a Hugging Face-compatible hub (hf_server), the thread
that serves an aiohttp app (servers). Imports only the standard library, aiohttp and pytest."""
