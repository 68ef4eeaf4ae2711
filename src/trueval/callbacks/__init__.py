"""trueval.callbacks"""
