"""trueval.tasks"""
