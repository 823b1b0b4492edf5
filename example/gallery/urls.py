from django.urls import path

from . import views

app_name = "gallery"
urlpatterns = [
    path("", views.document_list, name="list"),
]
