.PHONY: install test lint typecheck demo samples
install:
	python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]'
test:
	.venv/bin/pytest -n 2
lint:
	.venv/bin/ruff check auditor tests benchmarks sample_logs
typecheck:
	.venv/bin/mypy
demo:
	.venv/bin/llm-audit scan sample_logs/
samples:
	.venv/bin/python sample_logs/generate.py
