"""trueval.sweep"""
