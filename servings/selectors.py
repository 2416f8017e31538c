"""Reads of servings, scoped to what the caller may see.

Will hold: serving_list / serving_get (every authenticated user).
"""
