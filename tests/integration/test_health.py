import azure.functions as func

from functions.health import health


def test_health_answers_200_when_every_storage_service_answers(settings):
    response = health(func.HttpRequest("GET", "http://localhost/api/health", body=b""))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
