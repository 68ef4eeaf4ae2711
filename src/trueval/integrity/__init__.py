"""trueval.integrity"""
