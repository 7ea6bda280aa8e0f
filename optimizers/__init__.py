"""Bounded optimizers (AdaBound, AMSBound, AdaBoundW) and the registry of every optimizer a study can use."""
