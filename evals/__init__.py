"""checkpoint-evals: evaluate open-weight LLM checkpoints on accuracy, latency and cost."""
