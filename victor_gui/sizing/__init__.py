"""The model manager: GPU/RAM detection, GGUF/safetensors header readers and the fit estimator.

Qt-free; every probe and read is async or runs in a worker thread."""
