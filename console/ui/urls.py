# Server-rendered console pages.
urlpatterns: list = []
