// Starts the vendored Swagger UI on /api/v1/docs: a file, not an inline script, so that
// the page's policy can forbid inline code. "Try it out" calls the API with the
// session, so writes carry the CSRF token; no validator badge (it would call out).
const body = document.body;

window.SwaggerUIBundle({
  url: body.dataset.openapiUrl,
  dom_id: "#swagger-ui",
  deepLinking: true,
  layout: "BaseLayout",
  presets: [window.SwaggerUIBundle.presets.apis],
  validatorUrl: null,
  requestInterceptor: (request) => {
    request.headers["X-CSRFToken"] = body.dataset.csrfToken;
    return request;
  },
});
