"""llm-audit: offline auditor for LLM API spend."""

__version__ = "0.1.0"
