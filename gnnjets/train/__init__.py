"""Training loops: contrastive pretraining (and, later, downstream heads)."""
