import json

import azure.functions as func

from functions import blueprints
from functions.openapi import docs, openapi, openapi_document


def test_openapi_document_lists_every_api_route_with_its_methods(settings):
    openapi_document.cache_clear()  # built once per process; other tests may have built it earlier
    document = json.loads(openapi(func.HttpRequest("GET", "http://localhost/api/openapi.json", body=b"")).get_body())
    assert document["openapi"].startswith("3.1")
    listed = {(path, method) for path, operations in document["paths"].items() for method in operations}
    index = func.FunctionApp()
    for blueprint in blueprints():
        index.register_functions(blueprint)
    for function in index.get_functions():
        trigger = function.get_trigger().get_dict_repr()
        if trigger["type"] == "httpTrigger" and trigger["route"].startswith("api/"):
            for method in trigger["methods"]:
                path = "/" + trigger["route"].split("{")[0]
                assert any(p.startswith(path) and m == method.value.lower() for p, m in listed), (path, method)


def test_docs_page_is_html_with_a_content_security_policy_and_no_external_assets(settings):
    response = docs(func.HttpRequest("GET", "http://localhost/docs", body=b""))
    assert response.status_code == 200
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    html = response.get_body().decode()
    assert "/api/health" in html
    assert "http://" not in html and "https://" not in html
