// Renders /openapi.json with the vendored Swagger UI. Kept out of the page
// so its Content-Security-Policy needs no inline script; validatorUrl: null
// keeps the page from calling validator.swagger.io.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
    deepLinking: true,
    validatorUrl: null,
    persistAuthorization: false,
    tryItOutEnabled: false,
  });
});
