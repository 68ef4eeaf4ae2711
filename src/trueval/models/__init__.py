"""trueval.models"""
