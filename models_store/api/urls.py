from django.urls import re_path

from models_store.api import views

TENANT = r"^tenants/(?P<tenant>[^/]+)"

urlpatterns = [
    re_path(rf"{TENANT}/models/?$", views.ModelCollectionView.as_view(), name="model-list"),
    re_path(rf"{TENANT}/models/extract/?$", views.ModelExtractView.as_view(), name="model-extract"),
    re_path(rf"{TENANT}/models/import/?$", views.ModelImportView.as_view(), name="model-import"),
    re_path(rf"{TENANT}/upload/?$", views.UploadPartView.as_view(), name="upload-part"),
    re_path(rf"{TENANT}/upload/start/?$", views.UploadStartView.as_view(), name="upload-start"),
    re_path(rf"{TENANT}/upload/done/?$", views.UploadDoneView.as_view(), name="upload-done"),
    re_path(rf"{TENANT}/upload/abort/?$", views.UploadAbortView.as_view(), name="upload-abort"),
    re_path(rf"{TENANT}/upload/dir/?$", views.UploadDirView.as_view(), name="upload-dir"),
    re_path(rf"{TENANT}/uploads/?$", views.DirectUploadCollectionView.as_view(), name="direct-upload-list"),
    re_path(rf"{TENANT}/uploads/(?P<upload_id>[^/]+)/?$", views.DirectUploadView.as_view(), name="direct-upload"),
    re_path(
        rf"{TENANT}/uploads/(?P<upload_id>[^/]+)/complete/?$",
        views.DirectUploadCompleteView.as_view(),
        name="direct-upload-complete",
    ),
]
