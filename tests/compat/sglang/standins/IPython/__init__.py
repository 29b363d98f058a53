"""Stand-in for IPython (see ../README.md): only `IPython.display` is imported by sglang, never called."""
