"""Operations on servings, named <entity>_<verb> and taking an Identity.

Will hold: serving_create / serving_delete (admins).
"""
