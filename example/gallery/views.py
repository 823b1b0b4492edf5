from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from .forms import DocumentForm
from .models import Document


def document_list(request: HttpRequest) -> HttpResponse:
    """The documents, newest first, and a form to upload one."""
    if request.method == "POST":
        form = DocumentForm(request.POST, request.FILES)
        if form.is_valid():
            form.save()  # the master copy, then a PUT to every media server
            return redirect("gallery:list")
    else:
        form = DocumentForm()
    context = {
        "form": form,
        "documents": Document.objects.all(),
        # To link each document's copy on every media server.
        "media_hosts": getattr(default_storage, "hosts", ()),
    }
    return render(request, "gallery/document_list.html", context)
