"""Lab model zoo: a small text corpus, a tokenizer, and (later) tiny models trained on them."""
