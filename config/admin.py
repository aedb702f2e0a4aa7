from django.contrib import admin

from config.models import DeadLetter, ProcessedEvent


@admin.register(ProcessedEvent)
class ProcessedEventAdmin(admin.ModelAdmin):
    list_display = ("event_id", "source", "event_type", "processed_at")
    list_filter = ("source", "event_type", "processed_at")
    search_fields = ("event_id",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ("created_at", "source", "routing_key", "event_id", "reason")
    list_filter = ("source", "routing_key", "created_at")
    search_fields = ("event_id", "reason", "body")
    readonly_fields = ("source", "routing_key", "event_id", "reason", "body", "created_at")

    def has_add_permission(self, request):
        return False
