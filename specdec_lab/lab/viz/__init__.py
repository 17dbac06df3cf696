"""Views of a trace: pure functions from a GenerationOutput to text, HTML or a figure."""
