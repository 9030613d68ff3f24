"""The strategy training pipeline: market data -> indicators -> fuzzy memberships -> features -> labels -> MLP.

Computation engines here are pure; only the training job reports, through the Reporter protocol.
"""
