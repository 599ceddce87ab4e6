from django.urls import path

from users_admin import views

app_name = "users_admin"
urlpatterns = [
    path("", views.index, name="index"),
]
