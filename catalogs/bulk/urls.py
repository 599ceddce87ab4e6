"""Included under ``<catalog name>/bulk/`` in catalogs/urls.py (names join "catalogs:")."""

from django.urls import path

from catalogs.bulk import views

urlpatterns = [
    path("", views.bulk_upload, name="bulk_upload"),
    path("jobs/", views.bulk_job_list, name="bulk_jobs"),
    path("<int:job_id>/", views.bulk_job_detail, name="bulk_job"),
    path("<int:job_id>/propose/", views.bulk_job_propose, name="bulk_propose"),
    path("<int:job_id>/control/", views.bulk_job_control, name="bulk_control"),
    path("<int:job_id>/errors.csv", views.bulk_job_errors_csv, name="bulk_errors"),
    path("<int:job_id>/report.csv", views.bulk_job_report_csv, name="bulk_report"),
]
