"""Operations on models, named <entity>_<verb> and taking an Identity.

Will hold: model_delete, multipart upload start/part/done/abort, presigned direct uploads, through
inferencemgmt.objectstore after a SelfSubjectAccessReview.
"""
