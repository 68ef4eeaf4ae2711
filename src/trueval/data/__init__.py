"""trueval.data"""
