"""End-to-end tests: the real `emd` in subprocesses against moto server, llama.cpp with SmolLM2 and the local
hub, all on 127.0.0.1. May import every package and tests.support."""
