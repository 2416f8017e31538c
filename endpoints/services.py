"""Operations on endpoints, named <entity>_<verb> and taking an Identity.

Will hold: endpoint_create / endpoint_update / endpoint_scale / endpoint_delete, acting as the user
through inferencemgmt.kube.
"""
