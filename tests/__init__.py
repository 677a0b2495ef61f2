"""The test suite: unit (synth + assertions, in-process servers), integration (the real `emd` in
subprocesses, moto server, llama.cpp, local hub) and support (test doubles). May import everything."""
