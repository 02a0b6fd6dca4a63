"""Text classification from raw files: readers, a ``tokenizers`` tokenizer, length buckets and the data module."""
