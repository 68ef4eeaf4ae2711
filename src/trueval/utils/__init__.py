"""trueval.utils"""
