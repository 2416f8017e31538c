from django.apps import AppConfig


class ServingsConfig(AppConfig):
    name = "servings"
    verbose_name = "Servings"
