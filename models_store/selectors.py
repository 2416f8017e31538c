"""Reads of models, scoped to what the caller may see.

Will hold: model_list.
"""
