"""Drafters trained for SmolLM2-135M-Instruct: the prompts, the self-distillation data, the training script, the weights."""
