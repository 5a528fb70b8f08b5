from django import template

from server.core.dashboard import dashboard

register = template.Library()


@register.inclusion_tag("admin/e2ee_dashboard.html")
def e2ee_dashboard() -> dict[str, object]:
    return dashboard()
