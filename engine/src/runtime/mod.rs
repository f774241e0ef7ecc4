//! The per-lcore run-to-completion poll loop and the embedding API.
