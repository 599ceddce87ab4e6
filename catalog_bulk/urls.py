"""Mounted under ``catalogs/<catalog name>/bulk/`` in console/urls.py."""

from django.urls import path

from catalog_bulk import views

app_name = "catalog_bulk"
urlpatterns = [
    path("", views.bulk_upload, name="upload"),
    path("jobs/", views.bulk_job_list, name="jobs"),
    path("copy/", views.bulk_copy, name="copy"),
    path("<int:job_id>/", views.bulk_job_detail, name="job"),
    path("<int:job_id>/propose/", views.bulk_job_propose, name="propose"),
    path("<int:job_id>/control/", views.bulk_job_control, name="control"),
    path("<int:job_id>/errors.csv", views.bulk_job_errors_csv, name="errors"),
    path("<int:job_id>/report.csv", views.bulk_job_report_csv, name="report"),
]
