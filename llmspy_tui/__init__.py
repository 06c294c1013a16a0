"""llmspy-tui: watch what processes send to and receive from LLM APIs, via eBPF on the TLS library."""

__version__ = "0.1.0"
