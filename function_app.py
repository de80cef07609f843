"""The Functions app: wiring only. Each area registers one blueprint from `functions/`."""

import azure.functions as func

from functions import blueprints

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
for blueprint in blueprints():
    app.register_functions(blueprint)
