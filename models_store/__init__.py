"""Models: model files in the tenant's bucket (``<model>/<version>/<path>``) and the upload protocols
(docs/decisions/0006-uploads.md; docs/compatibility.md).

Routes (``api/urls.py``), every one behind a SelfSubjectAccessReview as the caller (``access.py``):

* ``GET /tenants/<t>/models`` (one entry per file; ``?view=grouped``: models → versions → files with
  sizes and the endpoints serving each version), ``DELETE /tenants/<t>/models`` (409 while served,
  unless ``force``);
* the original multipart protocol: ``POST upload/start``, ``PUT upload?...`` (streamed),
  ``POST upload/done``, ``POST upload/abort``, ``POST upload/dir``;
* direct uploads: ``POST uploads`` (plan + presigned part URLs), ``GET uploads/<id>`` (parts already
  stored, fresh URLs for the rest: resume), ``POST uploads/<id>/complete`` (verifies size and MD5 of
  every part in a task), ``DELETE uploads/<id>`` (abort);
* server-side work as Operations: ``POST models/extract`` (a tarball in the bucket),
  ``POST models/import`` (``s3://<tenant>/<path>`` or an http(s) URL).
"""
